package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/edge"
	"github.com/tributary-edge/tributary/edge/buffer"
	"github.com/tributary-edge/tributary/internal/proctest"

	"github.com/rs/zerolog"
)

// appendFile appends s to the file at path, creating it.
func appendFile(t testing.TB, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"n\":%d}\n", i)
	}
	return b.String()
}

func wantEvents(from, to int) string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"n":%d}`, i))
	}
	return strings.Join(out, " ")
}

func startFileSource(t testing.TB, b *buffer.Buffer, path string, logs *logBuffer) *FileSource {
	t.Helper()
	s := NewFileSource(b, path)
	s.Poll = 5 * time.Millisecond
	if logs != nil {
		s.Logger = zerolog.New(logs)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitEvents(t testing.TB, b *buffer.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := strings.Join(dataOf(rowsOf(t, b, edge.DefaultStream)), " ")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events:\n%s\nwant:\n%s", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFileSourceFollowsAndWaitsForNewlines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.ndjson")
	b := openTestBuffer(t, dir)
	var logs logBuffer
	// The file does not exist yet.
	startFileSource(t, b, path, &logs)
	appendFile(t, path, "{\"n\":0}\nnot json\n\n{\"n\":1}\n{\"n\":")
	waitEvents(t, b, wantEvents(0, 2))
	appendFile(t, path, "2}\n")
	waitEvents(t, b, wantEvents(0, 3))
	if !strings.Contains(logs.String(), `"line":2`) || !strings.Contains(logs.String(), "not a JSON object") {
		t.Fatalf("bad line 2 not logged:\n%s", logs.String())
	}
}

func TestFileSourceResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.ndjson")
	appendFile(t, path, lines(0, 500)+`{"n":`)
	b := buffer.New(filepath.Join(dir, "buffer.db"))
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := NewFileSource(b, path)
	s.Poll, s.ChunkBytes = 5*time.Millisecond, 4096 // several commits
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, b, wantEvents(0, 500))
	s.Close()
	b.Close()

	// While the agent is down the partial line is finished and more arrive.
	appendFile(t, path, "500}\n"+lines(501, 600))
	b2 := openTestBuffer(t, dir)
	var logs logBuffer
	startFileSource(t, b2, path, &logs)
	waitEvents(t, b2, wantEvents(0, 600))
	if !strings.Contains(logs.String(), "resuming the file") {
		t.Fatalf("no resume logged:\n%s", logs.String())
	}
}

func TestFileSourceSurvivesRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.ndjson")
	b := openTestBuffer(t, dir)
	appendFile(t, path, lines(0, 10))
	startFileSource(t, b, path, nil)
	waitEvents(t, b, wantEvents(0, 10))

	// The writer still holds the old file when it is renamed, writes a little
	// more to it, including a last line without a newline, then moves on.
	old, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.WriteString(lines(10, 15) + `{"n":15}`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	appendFile(t, path, lines(16, 20))
	waitEvents(t, b, wantEvents(0, 20))

	// The new file goes on being followed.
	appendFile(t, path, lines(20, 22))
	waitEvents(t, b, wantEvents(0, 22))
}

func TestFileSourceStartsOverAfterTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.ndjson")
	b := openTestBuffer(t, dir)
	appendFile(t, path, lines(0, 50))
	var logs logBuffer
	startFileSource(t, b, path, &logs)
	waitEvents(t, b, wantEvents(0, 50))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	proctest.WaitFor(t, "the truncation to be seen", 10*time.Second, func() bool { return strings.Contains(logs.String(), "file truncated") })
	appendFile(t, path, lines(100, 103))
	waitEvents(t, b, wantEvents(0, 50)+" "+wantEvents(100, 103))
}

func TestFileSourceReplacedWhileStopped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.ndjson")
	appendFile(t, path, lines(0, 5))
	b := buffer.New(filepath.Join(dir, "buffer.db"))
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := startFileSource(t, b, path, nil)
	waitEvents(t, b, wantEvents(0, 5))
	s.Close()
	b.Close()
	// Rotated while the agent was down: the new file is read from its start.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(5, 7))
	b2 := openTestBuffer(t, dir)
	startFileSource(t, b2, path, nil)
	waitEvents(t, b2, wantEvents(0, 7))
}

func TestFileSourceSkipsOverlongLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.ndjson")
	b := openTestBuffer(t, dir)
	s := NewFileSource(b, path)
	var logs logBuffer
	s.Poll, s.ChunkBytes, s.MaxEventBytes, s.Logger = 5*time.Millisecond, 4096, 100, zerolog.New(&logs)
	// Longer than a read, so that it is dropped while it is still incomplete.
	appendFile(t, path, "{\"n\":0}\n{\"pad\":\""+strings.Repeat("x", 10000)+"\"}\n{\"n\":1}\n")
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitEvents(t, b, wantEvents(0, 2))
	if !strings.Contains(logs.String(), `"line":2`) || !strings.Contains(logs.String(), "over the event size limit") {
		t.Fatalf("overlong line 2 not logged:\n%s", logs.String())
	}
}
