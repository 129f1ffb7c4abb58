package api

import "net/http"

func (s *Server) routes() {
	// Accounts and authentication.
	s.handlePublic("POST /oauth/authorizations", s.createAuthorization)
	s.handle("GET /oauth/authorizations", s.listAuthorizations)
	s.handle("GET /oauth/authorizations/{id}", s.getAuthorization)
	s.handle("DELETE /oauth/authorizations/{id}", s.deleteAuthorization)
	s.handle("DELETE /oauth/sessions/{id}", s.deleteSession)
	s.handle("GET /account", s.getAccount)
	s.handle("GET /users/{user}", s.getUser)
	s.mux.HandleFunc("GET /account/rate-limits", s.rateLimits)
	s.handle("POST /accounts", s.createAccount)

	// Apps.
	s.handle("POST /apps", s.createApp)
	s.handle("GET /apps", s.listApps)
	s.handle("GET /users/{user}/apps", s.listUserApps)
	s.handle("GET /apps/{app}", s.getApp)
	s.handle("PATCH /apps/{app}", s.updateApp)
	s.handle("DELETE /apps/{app}", s.destroyApp)
	s.handle("GET /apps/{app}/collaborators", s.listCollaborators)
	s.handle("GET /apps/{app}/addons", s.listAddons)

	// Dynos.
	s.handle("GET /apps/{app}/dynos", s.listDynos)
	s.handle("GET /apps/{app}/dynos/{dyno}", s.getDyno)
	s.handle("POST /apps/{app}/dynos", s.createDyno)
	s.handle("DELETE /apps/{app}/dynos", s.restartDynos)
	s.handle("DELETE /apps/{app}/dynos/{dyno}", s.restartDynos)
	s.handle("DELETE /apps/{app}/formations/{type}", s.restartDynos)
	s.handle("POST /apps/{app}/dynos/{dyno}/actions/stop", s.restartDynos)
	s.handle("POST /apps/{app}/formations/{type}/actions/stop", s.restartDynos)

	// Config vars and releases.
	s.handle("GET /apps/{app}/config-vars", s.getConfig)
	s.handle("PATCH /apps/{app}/config-vars", s.updateConfig)
	s.handle("GET /apps/{app}/releases", s.listReleases)
	s.handle("POST /apps/{app}/releases", s.createRelease)
	s.handle("GET /apps/{app}/releases/{release}", s.getRelease)
	s.handle("GET /apps/{app}/releases/{release}/config-vars", s.getReleaseConfig)

	// Formation.
	s.handle("GET /apps/{app}/formation", s.listFormation)
	s.handle("PATCH /apps/{app}/formation", s.batchUpdateFormation)
	s.handle("GET /apps/{app}/formation/{type}", s.getFormation)
	s.handle("PATCH /apps/{app}/formation/{type}", s.updateFormation)

	// Features.
	s.handle("GET /apps/{app}/features", s.listFeatures)
	s.handle("GET /apps/{app}/features/{feature}", s.getFeature)
	s.handle("PATCH /apps/{app}/features/{feature}", s.updateFeature)

	// Logs: sessions, and their streams (authenticated by the URL itself).
	s.handle("POST /apps/{app}/log-sessions", s.createLogSession)
	s.mux.HandleFunc("POST /apps/{app}/log-input", s.ingestLogs) // authenticates itself (grants.go); = logInputPattern
	s.mux.HandleFunc("GET /logstream/{id}", s.logStream)

	// Log drains.
	s.handle("POST /apps/{app}/log-drains", s.createDrain)
	s.handle("GET /apps/{app}/log-drains", s.listDrains)
	s.handle("GET /apps/{app}/log-drains/{drain}", s.getDrain)
	s.handle("DELETE /apps/{app}/log-drains/{drain}", s.deleteDrain)
	// Domains, SNI endpoints and Automated Certificate Management.
	s.handle("GET /apps/{app}/domains", s.listDomains)
	s.handle("POST /apps/{app}/domains", s.createDomain)
	s.handle("GET /apps/{app}/domains/{domain}", s.getDomain)
	s.handle("PATCH /apps/{app}/domains/{domain}", s.updateDomain)
	s.handle("DELETE /apps/{app}/domains/{domain}", s.deleteDomain)
	s.handle("GET /apps/{app}/sni-endpoints", s.listSNIEndpoints)
	s.handle("POST /apps/{app}/sni-endpoints", s.createSNIEndpoint)
	s.handle("GET /apps/{app}/sni-endpoints/{endpoint}", s.getSNIEndpoint)
	s.handle("PATCH /apps/{app}/sni-endpoints/{endpoint}", s.updateSNIEndpoint)
	s.handle("DELETE /apps/{app}/sni-endpoints/{endpoint}", s.deleteSNIEndpoint)
	s.handle("POST /apps/{app}/acm", s.enableACM)
	s.handle("PATCH /apps/{app}/acm", s.refreshACM)
	s.handle("DELETE /apps/{app}/acm", s.disableACM)
	// Builds from source; source uploads and build output are
	// authenticated by the secret in their URLs.
	s.handle("POST /apps/{app}/builds", s.createBuild)
	s.handle("GET /apps/{app}/builds", s.listBuilds)
	s.handle("GET /apps/{app}/builds/{build}", s.getBuild)
	s.handle("DELETE /apps/{app}/builds/{build}", s.cancelBuild)
	s.handle("DELETE /apps/{app}/build-cache", s.deleteBuildCache)
	s.handle("POST /apps/{app}/sources", s.createSource)
	s.handle("PUT /stacks/{stack}/rootfs", s.importStack)
	s.mux.HandleFunc("PUT /build-sources/{key}", s.buildSource)
	s.mux.HandleFunc("GET /build-sources/{key}", s.buildSource)
	s.mux.HandleFunc("GET /build-output/{key}", s.buildOutput)

	// Routers running apart from the server (skiff router --api).
	s.handleRouter("GET /skiff/router/table", s.routerTable)
	s.handleRouter("GET /skiff/router/acme-challenges/{token}", s.routerChallenge)
	s.handleRouter("POST /skiff/router/logs", s.routerLogs) // = routerLogsPattern

	// Platform catalogue.
	s.handle("GET /regions", s.listRegions)
	s.handle("GET /regions/{region}", s.getRegion)
	s.handle("GET /stacks", s.listStacks)
	s.handle("GET /stacks/{stack}", s.getStack)
	s.handle("GET /dyno-sizes", s.listSizes)
	s.handle("GET /dyno-sizes/{size}", s.getSize)
	s.handle("GET /apps/{app}/available-dyno-sizes", s.listAppSizes)

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, notFound("The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did you specify your intended version with the `Accept` header?"))
	})
}
