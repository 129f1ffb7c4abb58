package router

// loopsByDefault says whether a zero Config.Loops starts the event loops;
// the tests run once with and once without them.
var loopsByDefault = true

// Where a goroutine takes over a request from an event loop.
const (
	atHead   = iota // a head the loop cannot read: serveHead
	atParsed        // a parsed request the loop does not handle: serveParsed
	atSent          // sent to the dyno, answer not read: proxyFrom
	atResp          // the response head is read, its body is not plain: received
)
