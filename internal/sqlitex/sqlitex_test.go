package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDSN(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want []string
		not  []string
	}{
		{"writer", Options{}, []string{"_journal_mode=WAL", "_synchronous=FULL", "_busy_timeout=5000", "_txlock=immediate"}, []string{"_query_only", "_cache_size"}},
		{"small cache", Options{CacheKiB: 512}, []string{"_cache_size=-512"}, nil},
		{"reader", Options{ReadOnly: true}, []string{"_journal_mode=WAL", "_query_only=true"}, []string{"_synchronous", "_txlock"}},
		{"buffer", Options{Exclusive: true, IncrementalVacuum: true}, []string{"_locking_mode=EXCLUSIVE", "_auto_vacuum=incremental", "_synchronous=FULL"}, nil},
		{"as is", Options{AsIs: true, BusyTimeout: 1500e6}, []string{"_busy_timeout=1500"}, []string{"_journal_mode", "_synchronous"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DSN("/data/a b%?#.db", tt.o)
			if !strings.HasPrefix(got, "file:/data/a b%25%3f%23.db?") {
				t.Errorf("DSN %q does not escape the path", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("DSN %q lacks %s", got, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("DSN %q has %s", got, n)
				}
			}
		})
	}
}

func open(t *testing.T, o Options) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "odd ?#% name.db")
	db, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestOpenAppliesSettingsToARealFile(t *testing.T) {
	db, path := open(t, Options{})
	ctx := context.Background()
	var mode string
	var sync int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous %d (2 is FULL), %v", sync, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file is not at its unescaped path: %v", err)
	}
	var cache int
	if err := db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache != -2000 {
		t.Fatalf("cache_size %d, want SQLite's default -2000, %v", cache, err)
	}
	small, err := Open(filepath.Join(t.TempDir(), "small.db"), Options{CacheKiB: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if err := small.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache != -256 {
		t.Fatalf("cache_size %d with CacheKiB 256, want -256, %v", cache, err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.ExecContext(ctx, "CREATE TABLE t (x)"); err == nil {
		t.Fatal("a read-only connection created a table")
	}
}

func TestCheckVersion(t *testing.T) {
	db, _ := open(t, Options{})
	ctx := context.Background()
	if v, err := CheckVersion(ctx, db, 1); err != nil || v != 0 {
		t.Fatalf("new file: %d, %v", v, err)
	}
	if _, err := db.ExecContext(ctx, SetVersionSQL(3)); err != nil {
		t.Fatal(err)
	}
	if v, err := CheckVersion(ctx, db, 3); err != nil || v != 3 {
		t.Fatalf("same version: %d, %v", v, err)
	}
	_, err := CheckVersion(ctx, db, 2)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "version 3, this build knows 2") {
		t.Fatalf("newer file: %v", err)
	}
}

func TestTxCommitsOrRollsBack(t *testing.T) {
	db, _ := open(t, Options{})
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Tx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx returned %v, want fn's error", err)
	}
	if err := Tx(ctx, db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (2)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []int
	if err := EachRow(ctx, db, "SELECT x FROM t ORDER BY x", func(r *sql.Rows) error {
		var x int
		err := r.Scan(&x)
		got = append(got, x)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != 2 {
		t.Fatalf("rows %v, want only the committed 2", got)
	}
}

func TestErrorCodes(t *testing.T) {
	db, path := open(t, Options{})
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (x BLOB)"); err != nil {
		t.Fatal(err)
	}
	// A page limit makes SQLite report the full disk it would report on a
	// real one.
	if _, err := db.ExecContext(ctx, "PRAGMA max_page_count = 8"); err != nil {
		t.Fatal(err)
	}
	_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (zeroblob(1000000))")
	if !IsFull(err) || IsBusy(err) || IsCorrupt(err) {
		t.Fatalf("full: %v (full %v)", err, IsFull(err))
	}
	if err := os.WriteFile(path+".not", []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	bad, err := Open(path+".not", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.ExecContext(ctx, "SELECT * FROM sqlite_master")
	if !IsCorrupt(err) || IsFull(err) {
		t.Fatalf("not a database: %v", err)
	}
	if IsFull(errors.New("database or disk is full")) {
		t.Fatal("IsFull matched an error that is not the driver's")
	}
}
