// Command app is the program the runtime tests run inside containers. It is
// built static (CGO_ENABLED=0) into the test image's lower layer as /app.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app command")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "echo": // app echo: both streams, exit 42
		fmt.Println("hello stdout")
		fmt.Fprintln(os.Stderr, "hello stderr")
		os.Exit(42)
	case "info":
		info()
	case "write": // app write PATH...: create files, remove /etc/passwd, wait for SIGTERM
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		for _, p := range os.Args[2:] {
			if err := os.WriteFile(p, []byte("written by app\n"), 0o644); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
		if err := os.Remove("/etc/passwd"); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		<-c
	case "cat": // app cat PATH
		b, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "stdin": // app stdin: copy stdin to stdout
		io.Copy(os.Stdout, os.Stdin)
	case "flood": // app flood N: print N numbered lines, then exit at once
		n, _ := strconv.Atoi(os.Args[2])
		for i := 1; i <= n; i++ {
			fmt.Printf("line %06d of a flood of output that fills the terminal's buffers\n", i)
		}
	case "tty": // app tty: describe stdin's terminal, then upper-case each input line until EOF; exit 3
		ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
		if err != nil {
			fmt.Println("no terminal:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "terminal %dx%d\n", ws.Col, ws.Row)
		b := make([]byte, 4096)
		for {
			n, err := os.Stdin.Read(b)
			if n > 0 {
				fmt.Print(strings.ToUpper(string(b[:n])))
			}
			if err != nil || n == 0 {
				break
			}
		}
		fmt.Println("eof")
		os.Exit(3)
	case "alloc": // app alloc MB: allocate and touch MB megabytes
		mb, _ := strconv.Atoi(os.Args[2])
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep))
	case "hold": // app hold MB: allocate MB megabytes, say so, then sleep
		mb, _ := strconv.Atoi(os.Args[2])
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		runtime.KeepAlive(keep)
	case "sleep": // app sleep: say ready, then sleep; SIGTERM is handled: exit 143
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		fmt.Println("got SIGTERM")
		os.Exit(143)
	case "plain": // app plain [CHILD]: no signal handling; with CHILD, also start a silent "app plain" child
		if len(os.Args) > 2 {
			exec.Command(os.Args[0], "plain").Start()
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "ignoreterm": // app ignoreterm: ignore SIGTERM, sleep
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "forkbomb": // fork children that pause until fork fails
		forkbomb()
	case "seccomp":
		seccomp()
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func status(key string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func info() {
	cwd, _ := os.Getwd()
	host, _ := os.Hostname()
	ifaces, _ := net.Interfaces()
	var names []string
	for _, i := range ifaces {
		up := "down"
		if i.Flags&net.FlagUp != 0 {
			up = "up"
		}
		names = append(names, i.Name+":"+up)
	}
	var nofile syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	tmp, _ := os.Stat("/tmp")
	err := os.WriteFile("/tmp/probe", []byte("x"), 0o600)
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"args": os.Args[2:], "env": os.Environ(), "cwd": cwd, "hostname": host,
		"uid": os.Getuid(), "gid": os.Getgid(), "pid": os.Getpid(),
		"capeff": status("CapEff"), "capbnd": status("CapBnd"), "nonewprivs": status("NoNewPrivs"),
		"seccomp": status("Seccomp"), "ifaces": names,
		"nofile": nofile.Cur, "nofile_max": nofile.Max,
		"tmp_mode": fmt.Sprintf("%o", uint32(tmp.Mode().Perm())|sticky(tmp)), "tmp_write": err == nil,
	})
}

func sticky(fi os.FileInfo) uint32 {
	if fi.Mode()&os.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

func forkbomb() {
	runtime.LockOSThread()
	n := 0
	for {
		// Raw clone, fork-style: the child only pauses, so it needs no Go
		// runtime (no new threads) and holds one pid each.
		pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if errno != 0 {
			fmt.Printf("forked %d, then: %v\n", n, errno)
			os.Exit(0)
		}
		if pid == 0 {
			for {
				syscall.RawSyscall(syscall.SYS_PAUSE, 0, 0, 0)
			}
		}
		n++
		if n > 10000 {
			fmt.Println("no limit")
			os.Exit(1)
		}
	}
}

func seccomp() {
	res := map[string]string{}
	errStr := func(err error) string {
		if err == nil {
			return "ok"
		}
		return err.Error()
	}
	runtime.LockOSThread() // unshare affects the thread
	res["unshare_user"] = errStr(syscall.Unshare(syscall.CLONE_NEWUSER))
	pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD|syscall.CLONE_NEWUSER), 0, 0, 0, 0, 0)
	if e == 0 && pid == 0 {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
	res["clone_newuser"] = errnoStr(e)
	res["mount"] = errStr(syscall.Mount("none", "/tmp", "tmpfs", 0, ""))
	_, _, e = syscall.RawSyscall(425, 1, 0, 0) // io_uring_setup (same number everywhere)
	res["io_uring_setup"] = errnoStr(e)
	_, _, e = syscall.RawSyscall(syscall.SYS_PTRACE, 0, 0, 0) // PTRACE_TRACEME
	res["ptrace"] = errnoStr(e)
	_, _, e = syscall.RawSyscall(syscall.SYS_PERSONALITY, 0x0040000, 0, 0) // ADDR_NO_RANDOMIZE
	res["personality_norandom"] = errnoStr(e)
	_, _, e = syscall.RawSyscall(syscall.SYS_PERSONALITY, 0xffffffff, 0, 0) // query
	res["personality_query"] = errnoStr(e)
	_, _, e = syscall.RawSyscall(1000, 0, 0, 0) // beyond any known syscall
	res["nr1000"] = errnoStr(e)
	json.NewEncoder(os.Stdout).Encode(res)
}

func errnoStr(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	return e.Error()
}
