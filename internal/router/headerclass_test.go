package router

import "testing"

func TestHeaderClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
	}{
		{"TE", hopHeader}, {"Upgrade", hopHeader}, {"trailer", hopHeader}, {"Connection", hopHeader},
		{"Keep-Alive", hopHeader}, {"CONTENT-LENGTH", hopHeader}, {"Proxy-Connection", hopHeader},
		{"Transfer-Encoding", hopHeader}, {"Proxy-Authenticate", hopHeader}, {"Proxy-Authorization", hopHeader},
		{"Via", routerHeader}, {"Expect", routerHeader}, {"X-Request-Id", routerHeader},
		{"x-forwarded-for", routerHeader}, {"X-Request-Start", routerHeader},
		{"X-Forwarded-Port", routerHeader}, {"X-Forwarded-Proto", routerHeader},
		{"Host", plainHeader}, {"T", plainHeader}, {"Content-Type", plainHeader},
		{"Transfer-Encodings", plainHeader}, {"X-Forwarded-Host", plainHeader},
		{"Proxy-Authorization-X", plainHeader}, {"", plainHeader}, {"Vía", plainHeader},
	} {
		if got := headerClass([]byte(tc.name)); got != tc.want {
			t.Errorf("headerClass(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}
