package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-edge/tributary/stream"
)

// TestCorruptBufferIsMovedAsideAndReported SIGKILLs an edge holding unsent
// events, damages its buffer file, and restarts it: the agent starts with a new
// epoch and keeps the damaged file as buffer.db.corrupt-*. When the old meta row
// is still readable, the hub learns of a corrupt-buffer gap for the old epoch
// covering exactly the unsent events; when the whole file is garbage the old
// epoch cannot be named and nothing is reported. Either way new events flow.
func TestCorruptBufferIsMovedAsideAndReported(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the buffer file and returns the bytes it wrote and where.
		damage func(t *testing.T, path string) (int64, []byte)
		// readable: the old meta row survives, so the loss is reported.
		readable bool
	}{
		{"pages-in-the-middle", func(t *testing.T, path string) (int64, []byte) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			const page = 4096
			if fi.Size() < 64*page {
				t.Fatalf("buffer file has %d bytes: too few of the events reached it for the test", fi.Size())
			}
			at := fi.Size() / 2 / page * page
			garbage := make([]byte, 4*page)
			rand.Read(garbage)
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(garbage, at); err != nil {
				t.Fatal(err)
			}
			return at, garbage
		}, true},
		{"whole-file-garbage", func(t *testing.T, path string) (int64, []byte) {
			// The log goes too: left in place, it would still hold the meta
			// row and the file's first page, and the loss would be told.
			garbage := make([]byte, 256<<10)
			rand.Read(garbage)
			if err := os.WriteFile(path, garbage, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path + "-wal"); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			return 0, garbage
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := "lim-corrupt-" + tc.name[:5]
			h := limDownHub(t)
			dir := t.TempDir()
			// A small cap checkpoints often, so that the file itself (not only
			// its log) holds the events when the agent is killed.
			e := startEdge(t, node, dir, h.natsURL(), "--buffer-max-bytes", "4MiB")
			acks := limAcks{}
			const perReq, requests = 100, 15
			for i := 0; i < requests; i++ {
				code, reply := limPost(t, e, "lim", limBody(i*perReq, perReq))
				if code != http.StatusAccepted {
					t.Fatalf("request %d: %d %s", i, code, reply)
				}
				acks.add(t, reply, i*perReq, perReq)
			}
			const n = perReq * requests
			old := limEdgeStatus(t, e)
			if old.Buffered != n || old.LastSeq != n {
				t.Fatalf("edge status before the kill: %+v", old)
			}
			e.kill()
			path := filepath.Join(dir, "buffer.db")
			at, garbage := tc.damage(t, path)

			e.start()
			e.waitReady()
			st := limEdgeStatus(t, e)
			if st.Epoch == old.Epoch || st.Epoch == "" || st.LastSeq != 0 || st.Buffered != 0 {
				t.Fatalf("edge status after restarting on a damaged buffer: %+v (old epoch %s)", st, old.Epoch)
			}
			wantDropped := uint64(0)
			if tc.readable {
				wantDropped = n
			}
			if st.Dropped != wantDropped {
				t.Fatalf("edge counts %d dropped after recovery, want %d", st.Dropped, wantDropped)
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "buffer.db.corrupt-*"))
			var mains []string
			for _, p := range aside {
				if !strings.HasSuffix(p, "-wal") && !strings.HasSuffix(p, "-shm") {
					mains = append(mains, p)
				}
			}
			if len(mains) != 1 {
				t.Fatalf("files moved aside: %v, want one buffer.db.corrupt-*", aside)
			}
			kept, err := os.ReadFile(mains[0])
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(kept)) < at+int64(len(garbage)) || !bytes.Equal(kept[at:at+int64(len(garbage))], garbage) {
				t.Fatalf("%s is not the damaged file", mains[0])
			}
			if !tc.readable && !strings.Contains(e.out.String(), "its epoch could not be read") {
				t.Fatalf("no log line says the unreadable file's events are lost without a record:\n%s", tail(e.out.String(), 3000))
			}

			limBringUp(t, h, "1GiB")
			code, reply := limPost(t, e, "lim", limBody(n, perReq))
			if code != http.StatusAccepted {
				t.Fatalf("ingest after recovery: %d %s", code, reply)
			}
			newAcks := limAcks{}
			if r := newAcks.add(t, reply, n, perReq); r.FirstSeq != 1 {
				t.Fatalf("first seq of the new epoch = %d, want 1", r.FirstSeq)
			}
			var ni limNode
			limSettle(t, "the new epoch's events and the old epoch's drops at the hub", 60*time.Second, func() (bool, string) {
				ni, _ = limHubNode(t, h, node)
				return ni.Events == perReq && ni.Epoch == st.Epoch && ni.HighSeq == perReq && ni.Dropped == int64(wantDropped),
					fmt.Sprintf("%+v", ni)
			})
			if seqs := limHubEvents(t, h, node, st.Epoch, newAcks); len(seqs) != perReq {
				t.Fatalf("hub holds %d of the new epoch's %d events", len(seqs), perReq)
			}
			gaps := limGaps(t, h, node)
			if tc.readable {
				want := []limGap{{Epoch: old.Epoch, FirstSeq: 1, LastSeq: n, Count: n, Reason: stream.ReasonCorruptBuffer}}
				if len(gaps) != 1 || gaps[0] != want[0] {
					t.Fatalf("gaps after a corrupt buffer: %+v, want %+v", gaps, want)
				}
				if ni.Epochs != 2 || ni.Missing != 0 {
					t.Fatalf("hub's record: %+v; want two epochs, nothing missing", ni)
				}
			} else {
				if len(gaps) != 0 || ni.Epochs != 1 || ni.Missing != 0 {
					t.Fatalf("hub after an unreadable buffer: %+v, gaps %+v; want only the new epoch and no gaps", ni, gaps)
				}
			}
		})
	}
}

// TestDiskFullAnswers503AndRecovers runs an edge on a 4 MiB tmpfs (skipped
// where mounting is not permitted), fills the disk while the hub is down, and
// checks that ingest answers 503 unavailable without storing anything, the
// agent stays up, ingest works again once space frees, and the hub gets every
// acknowledged event exactly once.
func TestDiskFullAnswers503AndRecovers(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the buffer's own disk-full test covers ENOSPC", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	const node = "lim-diskfull"
	h := limDownHub(t)
	e := startEdge(t, node, filepath.Join(mnt, "edge"), h.natsURL())

	acks := limAcks{}
	const perReq = 100
	id, full := 0, 0
	for i := 0; full < 3; i++ {
		if i == 100 {
			t.Fatalf("100 requests of %d events onto a 4 MiB disk, none refused", perReq)
		}
		before := limEdgeStatus(t, e)
		code, reply := limPost(t, e, "lim", limBody(id, perReq))
		switch code {
		case http.StatusAccepted:
			if full > 0 {
				t.Fatalf("request accepted on a full disk after a refusal: %s", reply)
			}
			acks.add(t, reply, id, perReq)
			id += perReq
		case http.StatusServiceUnavailable:
			if c := limError(t, reply); c != "unavailable" {
				t.Fatalf("disk-full refusal has code %q: %s", c, reply)
			}
			after := limEdgeStatus(t, e)
			if after.LastSeq != before.LastSeq || after.Buffered != before.Buffered || after.BufferedBytes != before.BufferedBytes {
				t.Fatalf("a refused request changed the buffer: %+v -> %+v", before, after)
			}
			full++
		default:
			t.Fatalf("request %d on a filling disk: %d %s", i, code, reply)
		}
	}
	if code, _ := httpGet(t, e.url()+"/healthz"); code != 200 {
		t.Fatalf("/healthz on a full disk: %d, want 200 (the agent keeps running)", code)
	}
	st := limEdgeStatus(t, e)
	if st.LastSeq != uint64(len(acks)) || st.Buffered != int64(len(acks)) {
		t.Fatalf("edge status on a full disk after %d acknowledged events: %+v", len(acks), st)
	}
	t.Logf("disk full after %d events", len(acks))

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	code, reply := limPost(t, e, "lim", limBody(id, perReq))
	if code != http.StatusAccepted {
		t.Fatalf("ingest after space freed: %d %s", code, reply)
	}
	if r := acks.add(t, reply, id, perReq); r.FirstSeq != st.LastSeq+1 {
		t.Fatalf("first seq after space freed = %d, want %d", r.FirstSeq, st.LastSeq+1)
	}

	limBringUp(t, h, "1GiB")
	var ni limNode
	limSettle(t, "the hub to hold every acknowledged event", 120*time.Second, func() (bool, string) {
		ni, _ = limHubNode(t, h, node)
		return ni.Events == int64(len(acks)), fmt.Sprintf("%+v", ni)
	})
	if ni.HighSeq != int64(len(acks)) || ni.Dropped != 0 || ni.Missing != 0 {
		t.Fatalf("hub's record after a full disk: %+v", ni)
	}
	if seqs := limHubEvents(t, h, node, st.Epoch, acks); len(seqs) != len(acks) {
		t.Fatalf("hub holds %d of %d acknowledged events", len(seqs), len(acks))
	}
}
