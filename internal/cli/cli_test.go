package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	if got := EnvName("buffer-max-bytes"); got != "TRIBUTARY_BUFFER_MAX_BYTES" {
		t.Fatalf("EnvName = %s", got)
	}
}

func TestParseFlagsWinOverEnv(t *testing.T) {
	env := map[string]string{"TRIBUTARY_DATA": "/env/data", "TRIBUTARY_NODE": "from-env", "TRIBUTARY_MAX": "2GiB", "TRIBUTARY_AGE": "1h"}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	data := fs.String("data", "./d", "")
	node := fs.String("node", "", "")
	var max Size = 1 << 30
	fs.Var(&max, "max", "")
	age := fs.Duration("age", 0, "")
	if err := Parse(fs, []string{"--node", "from-flag"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *data != "/env/data" || *node != "from-flag" || max != 2<<30 || *age != time.Hour {
		t.Fatalf("got data=%s node=%s max=%d age=%v", *data, *node, max, *age)
	}
}

func TestParseBadEnvNamesVariable(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("age", 0, "")
	err := Parse(fs, nil, func(k string) string {
		if k == "TRIBUTARY_AGE" {
			return "soon"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "TRIBUTARY_AGE") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1024", 1024, true}, {"1GiB", 1 << 30, true}, {"512MiB", 512 << 20, true}, {"100MB", 100e6, true},
		{"2 kib", 2048, true}, {"", 0, false}, {"-1", 0, false}, {"1.5GiB", 0, false}, {"9999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v", tt.in, got, err)
		}
	}
}
