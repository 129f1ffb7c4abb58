package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The expected outputs below were captured from the official heroku CLI
// (11.10.0, output not a terminal) against a Skiff server.

func TestTable(t *testing.T) {
	tests := []struct {
		name     string
		headings []string
		rows     [][]string
		want     string
	}{
		{
			name:     "releases",
			headings: []string{"v", "description", "user", "created_at"},
			rows: [][]string{
				{"v5", "Deploy aaaaaaaa", "admin@skiff.local", "2026/11/23 09:15:24 +0000 (~ 37s ago)"},
				{"v4", "Remove A config vars", "admin@skiff.local", "2026/11/23 09:14:56 +0000 (~ 1m ago)"},
			},
			want: "" +
				"  v    description            user                created_at\n" +
				" " + strings.Repeat("─", 87) + "\n" +
				"  v5   Deploy aaaaaaaa        admin@skiff.local   2026/11/23 09:15:24 +0000 (~ 37s ago)\n" +
				"  v4   Remove A config vars   admin@skiff.local   2026/11/23 09:14:56 +0000 (~ 1m ago)\n" +
				"\n",
		},
		{
			name:     "regions",
			headings: []string{"ID", "Location", "Runtime"},
			rows:     [][]string{{"us", "This Skiff installation", "Common Runtime"}},
			want: "" +
				"  ID   Location                  Runtime\n" +
				" " + strings.Repeat("─", 47) + "\n" +
				"  us   This Skiff installation   Common Runtime\n" +
				"\n",
		},
		{
			name:     "heading wider than cells, empty last cell",
			headings: []string{"type", "total"},
			rows:     [][]string{{"Standard-2X", ""}},
			want: "" +
				"  type          total\n" +
				" " + strings.Repeat("─", 21) + "\n" +
				"  Standard-2X\n" +
				"\n",
		},
		{
			name:     "no rows",
			headings: []string{"a"},
			want:     "  a\n ───\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			table(&b, tt.headings, tt.rows)
			if b.String() != tt.want {
				t.Errorf("table:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestStyledObject(t *testing.T) {
	tests := []struct {
		name   string
		fields []field
		want   string
	}{
		{
			name: "apps:info",
			fields: []field{
				{"Addons", []string{}}, {"Collaborators", []string{}},
				{"Auto Cert Mgmt", "false"}, {"Git URL", "https://git.localhost/myapp.git"},
				{"Dynos", ""}, {"Stack", "container"},
			},
			want: "" +
				"Auto Cert Mgmt: false\n" +
				"Git URL:        https://git.localhost/myapp.git\n" +
				"Dynos:          \n" +
				"Stack:          container\n",
		},
		{
			name:   "lists continue under the value column",
			fields: []field{{"Addons", []string{"a:1", "b:2"}}, {"Owner", "me@example.com"}},
			want:   "Addons: a:1\n        b:2\nOwner:  me@example.com\n",
		},
		{
			name:   "nil values are left out of the width",
			fields: []field{{"A very long key", nil}, {"By", "x"}},
			want:   "By: x\n",
		},
		{
			name: "empty",
			want: "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			styledObject(&b, tt.fields)
			if b.String() != tt.want {
				t.Errorf("styledObject:\n%q\nwant:\n%q", b.String(), tt.want)
			}
		})
	}
}

func TestAgo(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 15, 24, 0, time.Local)
	prefix := at.Format("2006/01/02 15:04:05 -0700")
	tests := []struct {
		elapsed time.Duration
		want    string
	}{
		{0, prefix + " (~ 0s ago)"},
		{59 * time.Second, prefix + " (~ 59s ago)"},
		{61 * time.Second, prefix + " (~ 1m ago)"},
		{2 * time.Hour, prefix + " (~ 2h ago)"},
		{24*time.Hour + 59*time.Minute, prefix + " (~ 24h ago)"},
		{26 * time.Hour, prefix},
	}
	for _, tt := range tests {
		if got := ago(at, at.Add(tt.elapsed)); got != tt.want {
			t.Errorf("ago(+%v) = %q, want %q", tt.elapsed, got, tt.want)
		}
	}
}

func TestFileSize(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		in   *int64
		want string
	}{
		{nil, "0 B"},
		{n(0), "0 B"},
		{n(1000), "1000 B"},
		{n(1536), "2 KB"},
		{n(5000000), "5 MB"},
		{n(1024*1024 - 1), "1 MB"},
		{n(3 << 30), "3 GB"},
	}
	for _, tt := range tests {
		if got := fileSize(tt.in); got != tt.want {
			t.Errorf("fileSize(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := map[string]string{
		"plain":        "plain",
		"":             "",
		"two words":    "'two words'",
		"a:b":          "'a:b'",
		"it's":         `"it's"`,
		"line\nbreak":  `"line\nbreak"`,
		"it's $HOME !": `"it's \$HOME \!"`,
		"postgres://u": "'postgres://u'",
	}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInspectCounts(t *testing.T) {
	if got := inspectCounts(nil, nil); got != "{}" {
		t.Errorf("empty: %q", got)
	}
	got := inspectCounts([]string{"web", "my-worker"}, map[string]int{"web": 2, "my-worker": 1})
	if want := "{ web: 2, 'my-worker': 1 }"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPrintJSONKeepsOrder(t *testing.T) {
	var b bytes.Buffer
	if err := printJSON(&b, json.RawMessage(`{"z":1,"a":{"y":"<b>","b":[]}}`)); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"z\": 1,\n  \"a\": {\n    \"y\": \"<b>\",\n    \"b\": []\n  }\n}\n"
	if b.String() != want {
		t.Errorf("printJSON = %q, want %q", b.String(), want)
	}
}
