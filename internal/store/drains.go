package store

import (
	"time"
)

// Drain is one of an app's log drains.
type Drain struct {
	ID        string
	AppID     string
	URL       string
	Token     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

const drainCols = `id, app_id, url, token, created_at, updated_at`

func scanDrain(s interface{ Scan(...any) error }) (*Drain, error) {
	var d Drain
	var created, updated string
	if err := s.Scan(&d.ID, &d.AppID, &d.URL, &d.Token, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	d.CreatedAt, d.UpdatedAt = ParseTime(created), ParseTime(updated)
	return &d, nil
}

// CreateDrain stores a new drain; ErrConflict if the app has one with the
// same URL.
func (tx *Tx) CreateDrain(d *Drain) error {
	_, err := tx.exec(`INSERT INTO log_drains (`+drainCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		d.ID, d.AppID, d.URL, d.Token, Time(d.CreatedAt), Time(d.UpdatedAt))
	if isUnique(err) {
		return ErrConflict
	}
	return err
}

// Drains lists an app's drains, oldest first.
func (tx *Tx) Drains(appID string) ([]*Drain, error) {
	rows, err := tx.query(`SELECT `+drainCols+` FROM log_drains WHERE app_id = ? ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDrain)
}

// AllDrains lists every drain of every app, for the delivery loop.
func (tx *Tx) AllDrains() ([]*Drain, error) {
	rows, err := tx.query(`SELECT ` + drainCols + ` FROM log_drains ORDER BY app_id, created_at, id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDrain)
}

// DeleteDrain removes one of an app's drains.
func (tx *Tx) DeleteDrain(appID, id string) error {
	return affected(tx.exec(`DELETE FROM log_drains WHERE app_id = ? AND id = ?`, appID, id))
}
