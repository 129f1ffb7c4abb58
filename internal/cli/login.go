package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Login is what the client remembers between runs: which server, as whom.
type Login struct {
	APIURL string `json:"api_url"`
	Email  string `json:"email"`
	Token  string `json:"token"`
}

// LoginPath is the client's login file: $SKIFF_LOGIN_FILE, else
// $XDG_CONFIG_HOME/skiff/login.json, else ~/.config/skiff/login.json.
func LoginPath() (string, error) {
	if p := os.Getenv("SKIFF_LOGIN_FILE"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the login file: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "skiff", "login.json"), nil
}

// ReadLogin reads the login file; a missing file is an empty Login.
func ReadLogin() (Login, error) {
	var l Login
	p, err := LoginPath()
	if err != nil {
		return l, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("%s: %w", p, err)
	}
	return l, nil
}

// WriteLogin saves l to the login file, readable by its owner only.
func WriteLogin(l Login) (string, error) {
	p, err := LoginPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(l, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}
