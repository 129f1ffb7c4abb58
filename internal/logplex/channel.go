package logplex

import (
	"sync"
	"time"
)

// channel is one app's log: an ingest queue, a worker that commits what is
// queued, the history and the tail sessions.
type channel struct {
	l   *Logplex
	id  string // app id
	seg *segment

	// The ingest queue, under qmu. The worker swaps q with spare.
	qmu    sync.Mutex
	q      []Line
	spare  []Line
	qbytes int
	enq    uint64 // lines ever queued
	closed bool   // refusing lines
	purge  bool   // closed for good: discard what is queued
	wake   chan struct{}
	exited chan struct{}

	// Committed state, under mu.
	mu    sync.Mutex
	cond  *sync.Cond // signalled when done grows or the worker exits
	hist  ring
	next  uint64 // the next line's sequence number
	done  uint64 // queued lines the worker has dealt with
	tails map[*tail]struct{}
	gone  bool // removed, or the Logplex closed
}

func (l *Logplex) newChannel(appID string) *channel {
	c := &channel{l: l, id: appID, seg: &segment{dir: l.cfg.Dir, base: fileBase(appID)},
		wake: make(chan struct{}, 1), exited: make(chan struct{}), next: 1,
		hist: ring{max: l.cfg.History}, tails: map[*tail]struct{}{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// load reads the channel's history from disk (before the worker starts).
func (c *channel) load() error {
	return c.seg.load(func(ln Line) {
		c.hist.push(ln)
		if ln.Seq >= c.next {
			c.next = ln.Seq + 1
		}
	})
}

// enqueue queues one line, or drops and counts it. It never blocks for
// longer than the queue's lock is held (a slice append).
func (c *channel) enqueue(ln Line) {
	c.qmu.Lock()
	if c.closed {
		c.qmu.Unlock()
		c.l.droppedClosed.Add(1)
		return
	}
	if len(c.q) >= c.l.cfg.QueueLines || c.qbytes+len(ln.Message) > c.l.cfg.QueueBytes {
		c.qmu.Unlock()
		c.l.droppedQueue.Add(1)
		return
	}
	c.q = append(c.q, ln)
	c.qbytes += len(ln.Message)
	c.enq++
	first := len(c.q) == 1
	c.qmu.Unlock()
	c.l.linesIn.Add(1)
	if first {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// enqueueAll queues lines in order under one hold of the lock; those that
// do not fit are dropped and counted.
func (c *channel) enqueueAll(lines []Line) {
	c.qmu.Lock()
	if c.closed {
		c.qmu.Unlock()
		c.l.droppedClosed.Add(uint64(len(lines)))
		return
	}
	first := len(c.q) == 0
	if c.q == nil {
		c.q = make([]Line, 0, max(len(lines), 64))
	}
	kept := 0
	for i := range lines {
		if len(c.q) >= c.l.cfg.QueueLines || c.qbytes+len(lines[i].Message) > c.l.cfg.QueueBytes {
			break
		}
		c.q = append(c.q, lines[i])
		c.qbytes += len(lines[i].Message)
		kept++
	}
	c.enq += uint64(kept)
	c.qmu.Unlock()
	c.l.linesIn.Add(uint64(kept))
	if kept < len(lines) {
		c.l.droppedQueue.Add(uint64(len(lines) - kept))
	}
	if first && kept > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// run is the channel's worker: it commits queued lines in batches until the
// channel is shut down.
func (c *channel) run() {
	defer func() {
		c.mu.Lock()
		c.gone = true
		for t := range c.tails {
			t.end()
		}
		clear(c.tails)
		c.mu.Unlock()
		c.cond.Broadcast()
		close(c.exited)
	}()
	for {
		c.qmu.Lock()
		for len(c.q) == 0 && !c.closed {
			c.qmu.Unlock()
			c.idle()
			c.qmu.Lock()
		}
		batch, closed, purge := c.q, c.closed, c.purge
		c.q, c.spare, c.qbytes = c.spare[:0], nil, 0
		c.qmu.Unlock()
		if len(batch) == 0 && closed {
			return
		}
		if purge {
			c.l.droppedClosed.Add(uint64(len(batch)))
			c.finish(len(batch))
		} else {
			c.commit(batch)
		}
		clear(batch) // let the collector have the messages
		c.qmu.Lock()
		c.spare = batch[:0]
		c.qmu.Unlock()
	}
}

// idle waits for lines. Queues grown for a burst are given back once no
// line came for a second: giving them back at the first small batch would
// make a busy channel grow them again and again.
func (c *channel) idle() {
	c.qmu.Lock()
	big := cap(c.q) > idleQueue || cap(c.spare) > idleQueue
	c.qmu.Unlock()
	if !big {
		<-c.wake
		return
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.wake:
	case <-t.C:
		c.qmu.Lock()
		if len(c.q) == 0 {
			c.q = nil
		}
		c.spare = nil
		c.qmu.Unlock()
		<-c.wake
	}
}

// idleQueue is the capacity of queue a channel keeps when idle.
const idleQueue = 4096

// commit numbers a batch, writes it to disk, then makes it visible.
func (c *channel) commit(batch []Line) {
	seq := c.next // only the worker changes next
	for i := range batch {
		batch[i].Seq = seq
		seq++
	}
	if err := c.seg.append(batch, c.l.cfg.History); err != nil {
		if c.l.writeErrors.Add(1) == 1 || c.l.writeErrors.Load()%1000 == 0 {
			c.l.log.Warn("logplex: writing an app's history failed; lines are kept in memory only", "app_id", c.id, "err", err)
		}
	}
	if o := c.l.outlet.Load(); o != nil {
		(*o).Deliver(c.id, batch) // before done grows: after Sync, the drains have the lines
	}
	now := c.l.cfg.Now().UnixMicro()
	c.mu.Lock()
	// Only the newest lines of a big batch stay in the history.
	for i := max(0, len(batch)-c.hist.max); i < len(batch); i++ {
		c.hist.push(batch[i])
	}
	for t := range c.tails {
		for i := range batch {
			if t.f.match(&batch[i]) && !t.push(batch[i], now) {
				c.l.droppedTail.Add(1)
			}
		}
		t.signal()
	}
	c.next = seq
	c.l.linesStored.Add(uint64(len(batch))) // before done: Sync's waiters see it
	c.done += uint64(len(batch))
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *channel) finish(n int) {
	c.mu.Lock()
	c.done += uint64(n)
	c.mu.Unlock()
	c.cond.Broadcast()
}

// sync waits until the lines queued so far are dealt with.
func (c *channel) sync() {
	c.qmu.Lock()
	target := c.enq
	c.qmu.Unlock()
	c.mu.Lock()
	for c.done < target && !c.gone {
		c.cond.Wait()
	}
	c.mu.Unlock()
}

// shutdown stops the worker after it has committed what is queued, or
// discarded it (purge). Tail streams end.
func (c *channel) shutdown(purge bool) {
	c.qmu.Lock()
	c.closed = true
	c.purge = c.purge || purge
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.exited
}

// open returns the backlog of a session and, if t is set, registers t for
// the lines committed after it, atomically: nothing is lost or repeated
// between the two. With resume, the backlog is every kept line after
// sequence number after; else the newest n lines. Lines match f.
func (c *channel) open(f filter, n int, after uint64, resume bool, t *tail) ([]Line, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return nil, false
	}
	var out []Line
	for i := c.hist.len() - 1; i >= 0; i-- {
		ln := c.hist.at(i)
		if resume && ln.Seq <= after {
			break
		}
		if !resume && len(out) >= n {
			break
		}
		if f.match(ln) {
			out = append(out, *ln)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if t != nil {
		c.tails[t] = struct{}{}
	}
	return out, true
}

// close unregisters a tail.
func (c *channel) unsubscribe(t *tail) {
	c.mu.Lock()
	delete(c.tails, t)
	c.mu.Unlock()
}

// ring is the history: the newest max lines, oldest first. It grows as
// lines come, so a quiet app costs little.
type ring struct {
	buf   []Line
	start int // index of the oldest line once buf is full
	max   int
}

func (r *ring) len() int { return len(r.buf) }

func (r *ring) push(ln Line) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, ln)
		return
	}
	r.buf[r.start] = ln
	r.start++
	if r.start == len(r.buf) {
		r.start = 0
	}
}

// at returns the i-th oldest line.
func (r *ring) at(i int) *Line {
	i += r.start
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	return &r.buf[i]
}
