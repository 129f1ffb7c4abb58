package router

// loopsByDefault says whether a zero Config.Loops starts the event loops;
// the tests run once with and once without them.
var loopsByDefault = true
