package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkKeepAlive proxies GETs over one keep-alive client connection
// to one dyno, log lines on; it reports allocations per request.
func BenchmarkKeepAlive(b *testing.B) {
	a := rawDyno(b)
	cfg := fastConfig()
	cfg.Log = func(appID, app, line string) {}
	r := New(cfg)
	r.SetRoutes([]Route{app("alpha", a)})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go r.Serve(l)
	defer r.Close()
	c, _ := net.Dial("tcp", l.Addr().String())
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET / HTTP/1.1\r\nHost: alpha.skiff.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(req)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// rawDyno answers every request on a connection with a fixed response.
func rawDyno(b *testing.B) string {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if readHead(br) == "" {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nhello, world\n")
				}
			}()
		}
	}()
	return l.Addr().String()
}
