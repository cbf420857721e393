package pattern

import "testing"

func TestCertain(t *testing.T) {
	done := func(m int64) NodeResult { return NodeResult{Matched: m, Completeness: Completeness{Complete: true}} }
	open := func(m int64) NodeResult { return NodeResult{Matched: m, Completeness: Completeness{Pending: 3}} }
	tests := []struct {
		name  string
		kind  Kind
		holds bool
		nodes map[string]NodeResult
		want  bool
	}{
		{"all holds, a node incomplete", All, true, map[string]NodeResult{"a": open(1), "b": done(2)}, true},
		{"all fails on a complete node", All, false, map[string]NodeResult{"a": done(0), "b": open(4)}, true},
		{"all fails on an incomplete node", All, false, map[string]NodeResult{"a": open(0), "b": done(4)}, false},
		{"all fails, every node complete", All, false, map[string]NodeResult{"a": done(0), "b": done(0)}, true},
		{"single fails, node incomplete", Single, false, map[string]NodeResult{"a": open(0)}, false},
		{"single fails, node complete", Single, false, map[string]NodeResult{"a": done(0)}, true},
		{"multiple fails, the failing one complete", Multiple, false, map[string]NodeResult{"a": done(0), "b": open(1)}, true},
		{"any holds with incomplete nodes", Any, true, map[string]NodeResult{"a": open(1), "b": open(0)}, true},
		{"any fails, one node incomplete", Any, false, map[string]NodeResult{"a": done(0), "b": open(0)}, false},
		{"any fails, every node complete", Any, false, map[string]NodeResult{"a": done(0), "b": done(0)}, true},
		{"any fails over no node", Any, false, map[string]NodeResult{}, true},
	}
	for _, tt := range tests {
		if got := Certain(tt.kind, tt.holds, tt.nodes); got != tt.want {
			t.Errorf("%s: certain %v, want %v", tt.name, got, tt.want)
		}
	}
}
