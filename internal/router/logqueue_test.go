package router

import (
	"fmt"
	"testing"
)

func TestLogQueueBatches(t *testing.T) {
	q := newLogQueue(3)
	if b := q.take(); b != nil {
		t.Fatalf("empty queue gave a batch of %d lines", len(b.lines))
	}
	line := []byte("first")
	for i, want := range []bool{true, true, true, false} {
		if got := q.add(fmt.Sprint("id", i), fmt.Sprint("app", i), line); got != want {
			t.Errorf("add %d = %v, want %v", i, got, want)
		}
		line = append(line[:0], fmt.Sprint("line ", i+1)...) // the queue keeps a copy
	}
	b := q.take()
	var got, lines []string
	b.each(func(appID, app, l string) {
		got = append(got, appID+" "+app+" "+l)
		lines = append(lines, l) // as handed out, to check after reuse
	})
	want := []string{"id0 app0 first", "id1 app1 line 1", "id2 app2 line 2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batch %q, want %q", got, want)
	}
	// Lines handed out stay intact when the batch is reused.
	q.give(b)
	if !q.add("id", "app", []byte("xxxxxxxxxxxxxxxxxxxx")) {
		t.Fatal("add after take refused")
	}
	b2 := q.take()
	q.give(b2)
	q.add("id", "app", []byte("xxxxxxxxxxxxxxxxxxxx"))
	if b3 := q.take(); b3 != b {
		t.Errorf("the given-back batch was not reused")
	}
	b2.each(func(_, _, l string) {
		if l != "xxxxxxxxxxxxxxxxxxxx" {
			t.Errorf("reused batch line %q", l)
		}
	})
	if fmt.Sprint(lines) != "[first line 1 line 2]" {
		t.Errorf("earlier lines changed to %q", lines)
	}
}

func TestLogQueueByteLimit(t *testing.T) {
	q := newLogQueue(1000)
	q.maxBytes = 10
	for i, tc := range []struct {
		line string
		ok   bool
	}{{"12345", true}, {"123456", false}, {"12345", true}, {"1", false}} {
		if got := q.add("id", "app", []byte(tc.line)); got != tc.ok {
			t.Errorf("add %d (%q) = %v, want %v", i, tc.line, got, tc.ok)
		}
	}
	if b := q.take(); len(b.lines) != 2 || string(b.buf) != "1234512345" {
		t.Errorf("batch %d lines %q", len(b.lines), b.buf)
	}
}
