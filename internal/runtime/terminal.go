package runtime

import (
	"fmt"
	"io"
	"os"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// Winsize is a terminal's size in character cells.
type Winsize struct {
	Cols, Rows uint16
}

// A process with a terminal (Spec.Terminal) still runs under `runc run` as
// a supervised child, so that its exit status, OOM kill and cleanup are
// handled as for any other container. runc refuses --console-socket unless
// it detaches (and a detached container's exit status is lost to us), so
// it does the console-socket exchange itself: it creates the container's
// pseudo-terminal, receives its master over a socket pair (SCM_RIGHTS),
// copies its own stdin into it and the terminal's output to its stdout.
// runc insists that one of its standard streams be a terminal, which it
// puts in raw mode: its stdin is the slave side of a host pseudo-terminal
// of ours, in raw mode, whose master we write the input into. Output takes
// no detour: it arrives on runc's stdout, a pipe, exactly as the process
// wrote it (runc clears the terminal's ONLCR, so "\n" stays "\n").

// openTerminal allocates the host pseudo-terminal: its master is kept in
// c.tty (closed by cleanup), its slave, in raw mode and of size ws, is
// returned for runc's stdin. The slave is opened O_NOCTTY: it must never
// become the controlling terminal of this process.
func (c *Container) openTerminal(ws *Winsize) (*os.File, error) {
	master, path, err := console.NewPty()
	if err != nil {
		return nil, fmt.Errorf("runtime: allocating a terminal: %w", err)
	}
	slave, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("runtime: opening %s: %w", path, err)
	}
	sc, err := console.ConsoleFromFile(slave)
	if err == nil {
		err = sc.SetRaw()
	}
	if err == nil && ws.Cols > 0 && ws.Rows > 0 {
		err = master.Resize(console.WinSize{Width: ws.Cols, Height: ws.Rows})
	}
	if err != nil {
		slave.Close()
		master.Close()
		return nil, fmt.Errorf("runtime: setting up the terminal: %w", err)
	}
	c.tty = master
	return slave, nil
}

// copyInput types in into the container's terminal until in ends or the
// container is gone. The end of in does not hang the terminal up: a
// process reading it sees end of input only when in carried the
// terminal's EOF character (Ctrl-D, 0x04), as on a real terminal.
func (c *Container) copyInput(in io.Reader) {
	_, _ = io.Copy(c.tty, in)
}
