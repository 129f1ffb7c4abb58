package router

import (
	"html"
	"net/url"
)

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

// customPage is the page that shows the app's own page at rawURL in place
// of def: the router still answers with its status, and the browser
// loads the page (and the assets it names by relative paths) from where
// it is hosted, as Heroku's ERROR_PAGE_URL and MAINTENANCE_PAGE_URL do.
// The router never fetches it, so a slow or missing page host cannot
// slow an error answer. def when rawURL is empty or not an absolute
// http(s) URL.
func customPage(rawURL, title, def string) string {
	u, err := url.Parse(rawURL)
	if rawURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return def
	}
	src := html.EscapeString(u.String())
	return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>` + title + `</title>
<style>html,body,iframe{margin:0;padding:0;border:0;width:100%;height:100%;overflow:hidden}</style></head>
<body><iframe src="` + src + `" title="` + title + `"></iframe></body></html>
`
}
