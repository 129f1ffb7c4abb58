package platform

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/skiffhq/skiff/internal/store"
	"golang.org/x/crypto/bcrypt"
)

// tokenPrefix marks Skiff API tokens so that secret scanners and people can
// recognise one.
const tokenPrefix = "skf_"

// Account is a signed-in principal.
type Account = store.Account

// Authorization is an API token's record. Secret holds the secret only when
// it was just created (or is the one the caller authenticated with).
type Authorization struct {
	store.Token
	Email  string
	Secret string
}

// HashToken returns the form in which a token is stored.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return tokenPrefix + hex.EncodeToString(b)
}

func normalEmail(email string) (string, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email, "@") {
		return "", errorf(KindInvalid, "Email %q is not a valid address.", email)
	}
	return strings.ToLower(email), nil
}

// CreateAccount creates an account and a first token for it. An empty
// password means the account signs in with its tokens only.
func (p *Platform) CreateAccount(ctx context.Context, email, password string, admin bool) (*Account, *Authorization, error) {
	email, err := normalEmail(email)
	if err != nil {
		return nil, nil, err
	}
	var hash string
	if password != "" {
		if len(password) > 72 {
			return nil, nil, errorf(KindInvalid, "Password is too long (maximum is 72 bytes).")
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			return nil, nil, err
		}
		hash = string(h)
	}
	now := p.now()
	a := &Account{ID: newID(), Email: email, PasswordHash: hash, Admin: admin, CreatedAt: now, UpdatedAt: now}
	var auth *Authorization
	err = p.write(ctx, func(tx *store.Tx, _ *[]Event) error {
		if err := tx.CreateAccount(a); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errorf(KindConflict, "An account with email %s already exists.", email)
			}
			return err
		}
		var err error
		auth, err = createToken(tx, a, "Created with the account", nil, now)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return a, auth, nil
}

// CreateAccountAs lets an admin create another account.
func (p *Platform) CreateAccountAs(ctx context.Context, actor *Account, email, password string) (*Account, *Authorization, error) {
	if !actor.Admin {
		return nil, nil, errorf(KindForbidden, "Only an admin can create accounts.")
	}
	return p.CreateAccount(ctx, email, password, false)
}

// EnsureAdmin creates the admin account when the store has no account at
// all, and returns its first token. It returns nil, nil when accounts exist.
func (p *Platform) EnsureAdmin(ctx context.Context, email string) (*Account, *Authorization, error) {
	var n int
	if err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.AccountCount()
		return err
	}); err != nil {
		return nil, nil, err
	}
	if n > 0 {
		return nil, nil, nil
	}
	return p.CreateAccount(ctx, email, "", true)
}

func createToken(tx *store.Tx, a *Account, desc string, expires *time.Time, now time.Time) (*Authorization, error) {
	secret := newSecret()
	t := store.Token{ID: newID(), AccountID: a.ID, Hash: HashToken(secret), Description: desc, ExpiresAt: expires, CreatedAt: now, UpdatedAt: now}
	if err := tx.CreateToken(&t); err != nil {
		return nil, err
	}
	return &Authorization{Token: t, Email: a.Email, Secret: secret}, nil
}

// Authenticate returns the account a bearer token belongs to.
func (p *Platform) Authenticate(ctx context.Context, secret string) (*Account, *store.Token, error) {
	unauthorized := errorf(KindUnauthorized, "Invalid credentials provided.")
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, nil, unauthorized
	}
	var a *Account
	var t *store.Token
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		if t, err = tx.TokenByHash(HashToken(secret)); err != nil {
			return err
		}
		a, err = tx.AccountByID(t.AccountID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, unauthorized
	}
	if err != nil {
		return nil, nil, err
	}
	if t.ExpiresAt != nil && !p.now().Before(*t.ExpiresAt) {
		return nil, nil, unauthorized
	}
	return a, t, nil
}

// Login checks email and password (the account's password, or one of its
// API tokens, as Heroku accepts) and issues a new token that expires after
// expiresIn (never when zero).
func (p *Platform) Login(ctx context.Context, email, password, desc string, expiresIn time.Duration) (*Authorization, error) {
	unauthorized := errorf(KindUnauthorized, "Invalid credentials provided.")
	var a *Account
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		a, err = tx.AccountByEmail(strings.ToLower(email))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized
	}
	if err != nil {
		return nil, err
	}
	ok := a.PasswordHash != "" && bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(password)) == nil
	if !ok {
		if owner, _, err := p.Authenticate(ctx, password); err == nil && owner.ID == a.ID {
			ok = true
		}
	}
	if !ok {
		return nil, unauthorized
	}
	return p.CreateToken(ctx, a, desc, expiresIn)
}

// CreateToken issues a new token for a.
func (p *Platform) CreateToken(ctx context.Context, a *Account, desc string, expiresIn time.Duration) (*Authorization, error) {
	now := p.now()
	var exp *time.Time
	if expiresIn > 0 {
		e := now.Add(expiresIn)
		exp = &e
	}
	var auth *Authorization
	err := p.write(ctx, func(tx *store.Tx, _ *[]Event) error {
		var err error
		auth, err = createToken(tx, a, desc, exp, now)
		return err
	})
	return auth, err
}

// Authorizations lists a's tokens. Secrets are not stored, so only the
// token the caller presented (current) is filled in.
func (p *Platform) Authorizations(ctx context.Context, a *Account, current string) ([]*Authorization, error) {
	var ts []*store.Token
	err := p.read(ctx, func(tx *store.Tx) error {
		var err error
		ts, err = tx.Tokens(a.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	hash := HashToken(current)
	out := make([]*Authorization, 0, len(ts))
	for _, t := range ts {
		auth := &Authorization{Token: *t, Email: a.Email}
		if t.Hash == hash {
			auth.Secret = current
		}
		out = append(out, auth)
	}
	return out, nil
}

// RevokeAuthorization deletes one of a's tokens.
func (p *Platform) RevokeAuthorization(ctx context.Context, a *Account, id string) error {
	err := p.write(ctx, func(tx *store.Tx, _ *[]Event) error { return tx.DeleteToken(a.ID, id) })
	if errors.Is(err, store.ErrNotFound) {
		return errorf(KindNotFound, "Couldn't find that authorization.")
	}
	return err
}
