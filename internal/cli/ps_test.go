package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseScaleArgs(t *testing.T) {
	tests := []struct {
		args []string
		want []scaleChange
	}{
		{nil, nil},
		{[]string{"web=3"}, []scaleChange{{Type: "web", Quantity: "3"}}},
		{[]string{"web+2"}, []scaleChange{{Type: "web", Quantity: "+2"}}},
		{[]string{"worker-1"}, []scaleChange{{Type: "worker", Quantity: "-1"}}},
		{[]string{"web=3:Standard-2X"}, []scaleChange{{Type: "web", Quantity: "3", Size: "Standard-2X"}}},
		{[]string{"web=0:standard-1x"}, []scaleChange{{Type: "web", Quantity: "0", Size: "standard-1x"}}},
		{[]string{"web+1:Performance-M"}, []scaleChange{{Type: "web", Quantity: "+1", Size: "Performance-M"}}},
		{[]string{"web=1:Shield-M"}, []scaleChange{{Type: "web", Quantity: "1", Size: "Private-M"}}},
		{[]string{"my-type_2=10"}, []scaleChange{{Type: "my-type_2", Quantity: "10"}}},
		{[]string{"web=2", "worker+1"}, []scaleChange{{Type: "web", Quantity: "2"}, {Type: "worker", Quantity: "+1"}}},
	}
	for _, tt := range tests {
		got, err := parseScaleArgs(tt.args)
		if err != nil {
			t.Errorf("parseScaleArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseScaleArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
		}
	}
}

func TestParseScaleArgsInvalid(t *testing.T) {
	for _, a := range []string{"web", "web=", "=3", "web=x", "web:3", "web=3:", "web=-1", "web=+1", "web 3", "web=3:Standard 2X", "web*2"} {
		if got, err := parseScaleArgs([]string{"web=1", a}); err == nil {
			t.Errorf("parseScaleArgs(%q) = %+v, want an error", a, got)
		} else if !strings.Contains(err.Error(), a) {
			t.Errorf("error %q does not name the argument %q", err, a)
		}
	}
}

func TestFormationLine(t *testing.T) {
	fs := []formation{{Type: "worker", Quantity: 0, Size: "Standard-1X"}, {Type: "web", Quantity: 3, Size: "Standard-2X"}}
	if got, want := formationLine(fs), "web=3:Standard-2X worker=0:Standard-1X"; got != want {
		t.Errorf("formationLine = %q, want %q", got, want)
	}
}

func TestParseTypeArgs(t *testing.T) {
	fs := []formation{{Type: "web"}, {Type: "worker"}}
	tests := []struct {
		args    []string
		want    []scaleChange
		wantErr string
	}{
		{args: nil, want: nil},
		{args: []string{"standard-2x"}, want: []scaleChange{{Type: "web", Size: "standard-2x"}, {Type: "worker", Size: "standard-2x"}}},
		{args: []string{"worker=Performance-M"}, want: []scaleChange{{Type: "worker", Size: "Performance-M"}}},
		{args: []string{"web=eco", "worker=basic"}, want: []scaleChange{{Type: "web", Size: "eco"}, {Type: "worker", Size: "basic"}}},
		{args: []string{"clock=eco"}, wantErr: "Type clock not found in process formation.\nTypes: web, worker"},
		{args: []string{"web=eco", "bad-arg="}, wantErr: "Type bad-arg not found"},
	}
	for _, tt := range tests {
		got, err := parseTypeArgs(tt.args, fs)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseTypeArgs(%q) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseTypeArgs(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}
