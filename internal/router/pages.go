package router

// Pages the router answers with itself. They are plain on purpose (Heroku
// serves unstyled HTML for system errors); the wording is Skiff's own.
const (
	pageAppError = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Application Error</title></head>
<body><h1>Application error</h1>
<p>An error occurred in the application and your page could not be served.
If you are the application owner, check your logs for details (<code>heroku logs --tail</code>).</p>
</body></html>
`
	pageNoSuchApp = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>No such app</title></head>
<body><h1>There's nothing here, yet.</h1>
<p>No app answers at this address. If you own the app, check its name or add this domain to it.</p>
</body></html>
`
	pageMaintenance = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Offline for Maintenance</title></head>
<body><h1>Offline for maintenance</h1>
<p>This app is undergoing maintenance right now. Please check back later.</p>
</body></html>
`
	pageBadRequest = "Bad Request\n"
)
