package cli

import (
	"bytes"
	"testing"
	"time"
)

func TestPrintDynos(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 10, 0, time.UTC)
	at := now.Add(-5 * time.Second)
	dynos := []dynoInfo{
		{Name: "web.10", Type: "web", Size: "Standard-1X", State: "up", Command: "/app", UpdatedAt: at},
		{Name: "worker.1", Type: "worker", Size: "Standard-2X", State: "crashed", Command: "/app work", UpdatedAt: at},
		{Name: "web.2", Type: "web", Size: "Standard-1X", State: "starting", Command: "/app", UpdatedAt: at},
		{Name: "run.1234", Type: "run", Size: "Standard-1X", State: "up", Command: "bash", UpdatedAt: at},
	}
	var b bytes.Buffer
	printDynos(&b, dynos, now)
	since := ago(at, now)
	want := "=== run: one-off processes (1)\n\n" +
		"run.1234 (Standard-1X): up " + since + ": bash\n\n" +
		"=== web (Standard-1X): /app (2)\n\n" +
		"web.2: starting " + since + "\n" +
		"web.10: up " + since + "\n\n" +
		"=== worker (Standard-2X): /app work (1)\n\n" +
		"worker.1: crashed " + since + "\n\n"
	if b.String() != want {
		t.Errorf("printDynos:\n%s\nwant:\n%s", b.String(), want)
	}
}
