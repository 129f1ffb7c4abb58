package logplex

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// TestSegmentBigBatches: batches larger than the history keep, on disk,
// exactly the newest lines, whatever the batch sizes, whether the syncer
// syncs the segments after every append or never, and the disk stays
// bounded (maxDisk).
func TestSegmentBigBatches(t *testing.T) {
	t.Parallel()
	const limit = 1500
	sizes := [][]int{{10, 5000, 3, 1600}, {1500, 1500, 1}, {4000}, {1499, 2, 3001, 7},
		slices.Repeat([]int{700}, 40), slices.Repeat([]int{1, 1499, 1600}, 9)}
	for i, sizes := range sizes {
		for _, syncer := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d syncer=%v", i, syncer), func(t *testing.T) {
				t.Parallel()
				testSegmentBatches(t, limit, sizes, syncer)
			})
		}
	}
}

func testSegmentBatches(t *testing.T, limit int, sizes []int, syncer bool) {
	t.Helper()
	dir := t.TempDir()
	s := &segment{dir: dir, base: fileBase(testApp)}
	seq := uint64(1)
	for _, n := range sizes {
		batch := make([]Line, n)
		for i := range batch {
			batch[i] = Line{Seq: seq, Time: int64(seq), Source: "app", Dyno: "web.1", Message: "line " + strconv.FormatUint(seq, 10)}
			seq++
		}
		if err := s.append(batch, limit); err != nil {
			t.Fatal(err)
		}
		if syncer {
			if err := s.sync(); err != nil {
				t.Fatal(err)
			}
		}
		if n := diskRecords(t, dir, testApp); n > maxDisk(limit) {
			t.Fatalf("%d records on disk", n)
		}
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	checkLoaded(t, dir, limit, seq-1)
}

// maxDisk bounds the records on disk for a history of limit lines: the
// previous segment holds less than two histories, the current one too.
func maxDisk(limit int) int { return 4 * limit }

// TestSegmentRotationWhileAppending: the syncer fsyncs the segments while
// the worker appends and rotates them (remove, rename, new file); whatever
// the interleaving, the newest lines are on disk, in order.
func TestSegmentRotationWhileAppending(t *testing.T) {
	t.Parallel()
	const limit = 100
	dir := t.TempDir()
	s := &segment{dir: dir, base: fileBase(testApp)}
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := s.sync(); err != nil {
				done <- err
				return
			}
		}
	}()
	seq := uint64(1)
	for range 3000 {
		batch := make([]Line, 7)
		for i := range batch {
			batch[i] = Line{Seq: seq, Source: "app", Dyno: "web.1", Message: "line " + strconv.FormatUint(seq, 10)}
			seq++
		}
		if err := s.append(batch, limit); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	checkLoaded(t, dir, limit, seq-1)
	if n := diskRecords(t, dir, testApp); n > maxDisk(limit) {
		t.Errorf("%d records on disk", n)
	}
}

// checkLoaded loads the history in dir and checks that it holds the newest
// limit of total lines, in order.
func checkLoaded(t *testing.T, dir string, limit int, total uint64) {
	t.Helper()
	r := ring{max: limit}
	if err := (&segment{dir: dir, base: fileBase(testApp)}).load(r.push); err != nil {
		t.Fatal(err)
	}
	if uint64(r.len()) != min(total, uint64(limit)) {
		t.Fatalf("loaded %d lines, want %d", r.len(), min(total, uint64(limit)))
	}
	for i := range r.len() {
		want := total - uint64(r.len()) + uint64(i) + 1
		if ln := r.at(i); ln.Seq != want || ln.Message != "line "+strconv.FormatUint(want, 10) {
			t.Fatalf("line %d = %d %q, want seq %d", i, ln.Seq, ln.Message, want)
		}
	}
}
