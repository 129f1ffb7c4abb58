package cli

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func init() {
	register("logs", command{
		usage: "logs [-n N] [-d DYNO] [-s SOURCE] [-t] -a APP", help: "display recent log output",
		flags: []flagDef{
			{Long: "num", Short: 'n', Value: true, Usage: "number of lines to display (default 100, at most 1500)"},
			{Long: "dyno", Short: 'd', Value: true, Usage: "only show output from this dyno or process type (web.1, web)"},
			{Long: "process-type", Short: 'p', Value: true, Usage: "only show output from this process type"},
			{Long: "source", Short: 's', Value: true, Usage: "only show output from this source (app, heroku)"},
			{Long: "tail", Short: 't', Usage: "continually stream logs"},
		},
		app: appRequired, run: logs,
	})
}

func logs(e *Env, in *Input) error {
	body := map[string]any{"lines": 100, "tail": in.Bool("tail")}
	if n := in.String("num"); n != "" {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return fmt.Errorf("Invalid --num %q: expected a positive number", n)
		}
		body["lines"] = v
	}
	if d := in.String("dyno"); d != "" {
		body["dyno"] = d
	} else if p := in.String("process-type"); p != "" {
		body["dyno"] = p
	}
	if s := in.String("source"); s != "" {
		body["source"] = s
	}
	var session struct {
		URL string `json:"logplex_url"`
	}
	if err := e.Do(Request{Method: "POST", Path: "/apps/" + escape(in.App) + "/log-sessions", Body: body}, &session); err != nil {
		return err
	}
	lastID := ""
	for {
		ended, err := e.stream(session.URL, &lastID)
		if err != nil {
			return err
		}
		if ended || !in.Bool("tail") {
			return nil
		}
		time.Sleep(time.Second) // the server ended the stream: resume after the last line seen
	}
}

// stream reads one Server-Sent Events connection, printing each event's
// data. It reports ended when the server says there is nothing more (204).
func (e *Env) stream(url string, lastID *string) (ended bool, err error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	client := &http.Client{} // no timeout: a tail stream lasts
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("cannot reach the log stream: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return true, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return false, fmt.Errorf("Log stream timed out. Please try again.")
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("Logs eventsource failed with: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				fmt.Fprintln(e.Out, strings.Join(data, "\n"))
				data = data[:0]
			}
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case strings.HasPrefix(line, "id:"):
			*lastID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		}
	}
	return false, sc.Err()
}
