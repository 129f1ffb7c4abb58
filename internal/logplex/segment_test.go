package logplex

import (
	"strconv"
	"testing"
)

// TestSegmentBigBatches: batches larger than the history keep, on disk,
// exactly the newest lines, whatever the batch sizes.
func TestSegmentBigBatches(t *testing.T) {
	t.Parallel()
	const limit = 1500
	for _, sizes := range [][]int{{10, 5000, 3, 1600}, {1500, 1500, 1}, {4000}, {1499, 2, 3001, 7}} {
		t.Run(strconv.Itoa(len(sizes)), func(t *testing.T) {
			t.Parallel()
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
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			r := ring{max: limit}
			if err := (&segment{dir: dir, base: fileBase(testApp)}).load(r.push); err != nil {
				t.Fatal(err)
			}
			total := seq - 1
			if uint64(r.len()) != min(total, limit) {
				t.Fatalf("loaded %d lines, want %d", r.len(), min(total, limit))
			}
			for i := range r.len() {
				want := total - uint64(r.len()) + uint64(i) + 1
				if ln := r.at(i); ln.Seq != want || ln.Message != "line "+strconv.FormatUint(want, 10) {
					t.Fatalf("line %d = %d %q, want seq %d", i, ln.Seq, ln.Message, want)
				}
			}
		})
	}
}
