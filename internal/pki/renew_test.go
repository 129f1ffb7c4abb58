package pki

import (
	"testing"
	"time"
)

// TestRenewer checks when a Renewer keeps its certificate and when it
// issues a new one, including when issuing fails.
func TestRenewer(t *testing.T) {
	const ttl = 90 * time.Hour
	tests := []struct {
		name    string
		after   time.Duration // time passed since the first certificate
		failing bool          // issuing fails from then on
		renewed bool          // a new certificate is served
		wantErr bool
	}{
		{name: "fresh", after: time.Hour},
		{name: "two thirds less a minute", after: 60*time.Hour - time.Minute},
		{name: "past two thirds", after: 61 * time.Hour, renewed: true},
		{name: "failing while the old one lasts", after: 80 * time.Hour, failing: true},
		{name: "failing once the old one expired", after: 91 * time.Hour, failing: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := Open(t.TempDir(), "Skiff test CA")
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().Truncate(time.Second) // certificates hold whole seconds
			ca.now = func() time.Time { return now }
			r := ca.Renewer([]string{"svc.skiff.test", "127.0.0.1"}, ttl)
			first, err := r.Certificate()
			if err != nil {
				t.Fatal(err)
			}
			if got := first.Leaf.NotAfter.Sub(now); got != ttl {
				t.Fatalf("first certificate lasts %v, want %v", got, ttl)
			}
			now = now.Add(tc.after)
			if tc.failing {
				r.names = nil // Issue refuses to issue for no names
			}
			got, err := r.GetCertificate(nil)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got a certificate valid until %v, want an error", got.Leaf.NotAfter)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if renewed := got != first; renewed != tc.renewed {
				t.Fatalf("renewed = %v, want %v", renewed, tc.renewed)
			}
			if tc.renewed && got.Leaf.NotAfter.Sub(now) != ttl {
				t.Fatalf("renewed certificate lasts %v from now, want %v", got.Leaf.NotAfter.Sub(now), ttl)
			}
		})
	}
}
