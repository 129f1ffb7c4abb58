// Package pid1 is the init process of a dyno. The kernel treats a PID
// namespace's first process specially: it ignores every signal that
// process has no handler for, and orphaned processes become its children.
// An app run directly as PID 1 would therefore ignore the dyno manager's
// SIGTERM and leave zombies. So each dyno runs this init as PID 1 (the
// skiff binary, bind-mounted read-only), which starts the app as its child,
// passes every signal on to all processes of the dyno — Heroku's dyno
// manager signals every process, not only the main one — reaps orphans,
// and exits with the app's status once the app exits.
package pid1

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwarded are the signals passed on to the dyno's processes.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT, syscall.SIGTSTP}

// Run starts args as the app and supervises it; it returns the exit status
// for the init to exit with: the app's, or 128+n when signal n killed it.
func Run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "skiff init: no command")
		return 127
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append(forwarded, syscall.SIGCHLD)...)

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if isTerminal(0) {
		// An attached dyno (`heroku run`): the app gets its own process
		// group in the terminal's foreground, so that a Ctrl-C typed on
		// the terminal reaches it once, not once directly and once more
		// through this init.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "skiff init: %v\n", err)
		if os.IsNotExist(err) || isNotFound(err) {
			return 127
		}
		return 126
	}
	app := cmd.Process.Pid
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			// -1: every process this one may signal, i.e. the whole
			// dyno but this init.
			syscall.Kill(-1, sig.(syscall.Signal))
			continue
		}
		if status, done := reap(app); done {
			return status
		}
	}
	return 0
}

// reap collects every exited child. It reports the app's exit status once
// the app itself has exited.
func reap(app int) (int, bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return 0, false
		}
		if pid != app {
			continue // an orphan; nothing more to do
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

func isNotFound(err error) bool {
	e, ok := err.(*exec.Error)
	return ok && e.Err == exec.ErrNotFound
}
