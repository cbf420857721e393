package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pkgFiles are the files a release tarball's deploy/ folder holds.
var pkgFiles = []string{
	"install.sh",
	"tributary-edge-agent.service",
	"tributary-hub.service",
	"edge-agent.env.example",
	"hub.env.example",
}

// newPackage lays out an unpacked release tarball in a temp dir, with stand-in
// binaries whose content names a release, and returns its deploy/install.sh.
func newPackage(t *testing.T, release string) (installer, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range pkgFiles {
		b, err := os.ReadFile(filepath.Join("arm", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "deploy", f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeBinaries(t, dir, release)
	return filepath.Join(dir, "deploy", "install.sh"), dir
}

func writeBinaries(t *testing.T, dir, release string) {
	t.Helper()
	for _, b := range []string{"edge-agent", "hub"} {
		script := "#!/bin/sh\necho " + b + " " + release + "\n"
		if err := os.WriteFile(filepath.Join(dir, b), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// newRoot makes an image root file system with just enough of /etc for useradd.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":   "root:x:0:\n",
		"etc/shadow":  "root:*:19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// run runs install.sh with args and returns its output, failing the test when
// the exit status is not the wanted one.
func run(t *testing.T, wantOK bool, installer string, args ...string) string {
	t.Helper()
	out, err := exec.Command(installer, args...).CombinedOutput()
	if (err == nil) != wantOK {
		t.Fatalf("install.sh %s: err %v, want success %v; output:\n%s", strings.Join(args, " "), err, wantOK, out)
	}
	return string(out)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// TestInstallScript runs install.sh against an image root (--root): install,
// re-install over an edited env file (the upgrade path), a second service,
// uninstall and purge, checking the files, modes, user and enablement each time.
func TestInstallScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("install.sh needs root")
	}
	for _, tool := range []string{"useradd", "userdel", "groupdel", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("install.sh needs %s", tool)
		}
	}
	installer, pkg := newPackage(t, "v1")
	root := newRoot(t)
	at := func(p string) string { return filepath.Join(root, p) }
	bin := at("usr/local/bin/edge-agent")
	unit := at("etc/systemd/system/tributary-edge-agent.service")
	wants := at("etc/systemd/system/multi-user.target.wants/tributary-edge-agent.service")
	env := at("etc/tributary/edge-agent.env")

	run(t, true, installer, "--root", root)
	if got := readFile(t, bin); got != readFile(t, filepath.Join(pkg, "edge-agent")) {
		t.Errorf("installed binary = %q, want the package's", got)
	}
	if got, want := readFile(t, unit), readFile(t, "arm/tributary-edge-agent.service"); got != want {
		t.Errorf("installed unit differs from deploy/arm's")
	}
	if got, want := readFile(t, env), readFile(t, "arm/edge-agent.env.example"); got != want {
		t.Errorf("installed env file differs from the example")
	}
	for path, mode := range map[string]os.FileMode{bin: 0o755, unit: 0o644, env: 0o640} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("stat installed file: %v", err)
		} else if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if !exists(wants) {
		t.Errorf("unit not enabled: %s missing", wants)
	}
	passwd := readFile(t, at("etc/passwd"))
	if !strings.Contains(passwd, "\ntributary:x:") || !strings.Contains(passwd, ":/usr/sbin/nologin\n") {
		t.Errorf("no system user tributary with a nologin shell in passwd:\n%s", passwd)
	}

	// An upgrade: a new binary, and an env file the operator has edited.
	edited := readFile(t, env) + "TRIBUTARY_NODE=greenhouse-1\n"
	if err := os.WriteFile(env, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	writeBinaries(t, pkg, "v2")
	out := run(t, true, installer, "--root", root)
	if got := readFile(t, bin); !strings.Contains(got, "v2") {
		t.Errorf("re-install kept the old binary %q", got)
	}
	if got := readFile(t, env); got != edited {
		t.Errorf("re-install changed the env file; output:\n%s", out)
	}
	if n := strings.Count(readFile(t, at("etc/passwd")), "\ntributary:"); n != 1 {
		t.Errorf("re-install left %d tributary users", n)
	}

	run(t, true, installer, "--root", root, "--hub")
	if !exists(at("usr/local/bin/hub")) || !exists(at("etc/tributary/hub.env")) ||
		!exists(at("etc/systemd/system/multi-user.target.wants/tributary-hub.service")) {
		t.Errorf("--hub did not install and enable the hub")
	}

	// Uninstall keeps settings and buffered data; purge deletes them.
	state := at("var/lib/tributary-edge/buffer.db")
	if err := os.MkdirAll(filepath.Dir(state), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("buffered events"), 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, true, installer, "--root", root, "--uninstall")
	for _, gone := range []string{bin, unit, wants} {
		if exists(gone) {
			t.Errorf("--uninstall left %s", gone)
		}
	}
	if readFile(t, env) != edited || !exists(state) {
		t.Errorf("--uninstall deleted the env file or the buffered data")
	}
	if !exists(at("usr/local/bin/hub")) {
		t.Errorf("uninstalling the edge agent removed the hub")
	}

	run(t, true, installer, "--root", root, "--uninstall", "--purge")
	if exists(env) || exists(state) {
		t.Errorf("--purge left the env file or the data")
	}
	if !strings.Contains(readFile(t, at("etc/passwd")), "\ntributary:") {
		t.Errorf("--purge of the edge agent deleted the user the hub still runs as")
	}
	run(t, true, installer, "--root", root, "--uninstall", "--purge", "--hub")
	if strings.Contains(readFile(t, at("etc/passwd")), "tributary") || strings.Contains(readFile(t, at("etc/group")), "tributary") {
		t.Errorf("--purge of the last service kept the tributary user or group")
	}
	if exists(at("etc/tributary")) {
		t.Errorf("--purge of the last service kept /etc/tributary")
	}
}

// TestInstallScriptRejects checks that install.sh refuses bad usage with a
// message and changes nothing.
func TestInstallScriptRejects(t *testing.T) {
	installer, _ := newPackage(t, "v1")
	root := newRoot(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, `unknown option "--bogus"`},
		{[]string{"--purge"}, "--purge goes with --uninstall"},
		{[]string{"--root"}, "--root needs a directory"},
		{[]string{"--root", filepath.Join(root, "missing")}, "no such directory"},
	} {
		out := run(t, false, installer, tc.args...)
		if !strings.Contains(out, tc.want) {
			t.Errorf("install.sh %v said %q, want %q", tc.args, out, tc.want)
		}
	}
	if exists(filepath.Join(root, "usr")) || exists(filepath.Join(root, "etc/tributary")) {
		t.Errorf("a rejected install wrote files")
	}
}

// TestUnitsVerify checks both units with systemd-analyze verify, which reports
// unknown keys, bad values and bad sandbox settings. Verify also wants the
// ExecStart binary to exist, so it runs on a copy that starts /bin/true.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	for _, unit := range []string{"tributary-edge-agent.service", "tributary-hub.service"} {
		b := readFile(t, filepath.Join("arm", unit))
		for _, bin := range []string{"/usr/local/bin/edge-agent ", "/usr/local/bin/hub "} {
			b = strings.ReplaceAll(b, "ExecStart="+bin, "ExecStart=/bin/true ")
		}
		if !strings.Contains(b, "ExecStart=/bin/true --data ${STATE_DIRECTORY}") {
			t.Fatalf("%s: ExecStart does not run the binary from /usr/local/bin with --data ${STATE_DIRECTORY}", unit)
		}
		path := filepath.Join(dir, unit)
		if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(analyze, "verify", path)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil || strings.Contains(out.String(), unit) {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out.String())
		}
	}
}
