//go:build !linux

package router

import "net"

// evloop is Linux's epoll event loop; elsewhere every connection has its
// own goroutine.
type evloop struct{}

func (r *Router) startLoops()                           {}
func (r *Router) dispatch(c net.Conn, port string) bool { return false }
func (l *evloop) wake()                                 {}

func (r *Router) loopCounts() (served uint64, handed [4]uint64) { return 0, handed }
