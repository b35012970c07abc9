package durable

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// writerEnv makes the test binary a writer process: it rewrites the named
// file with self-checking content of varying size until it is killed.
const writerEnv = "ORCHD_DURABLE_TEST_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		os.Exit(writer(path))
	}
	os.Exit(m.Run())
}

func writer(path string) int {
	seed, _ := strconv.ParseUint(os.Getenv(writerEnv+"_SEED"), 10, 64)
	r := rand.New(rand.NewPCG(seed, 1))
	write := WriteFile
	if os.Getenv(writerEnv+"_REPLACE") != "" {
		write = Replace
	}
	for seq := 0; ; seq++ {
		if err := write(path, payload(seq, 1+r.IntN(256<<10)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Tell the test a write completed (it counts them).
		os.Stdout.Write([]byte{'.'})
	}
}

// payload is a header naming the body's length and hash, then the body.
func payload(seq, n int) []byte {
	body := bytes.Repeat([]byte{byte('a' + seq%26)}, n)
	sum := sha256.Sum256(body)
	return append([]byte(fmt.Sprintf("seq %d len %d sha256 %s\n", seq, n, hex.EncodeToString(sum[:]))), body...)
}

// check says what is wrong with a file's content, "" if it is whole.
func check(b []byte) string {
	head, body, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return fmt.Sprintf("no header (%d bytes)", len(b))
	}
	var seq, n int
	var sum string
	if _, err := fmt.Sscanf(string(head), "seq %d len %d sha256 %s", &seq, &n, &sum); err != nil {
		return fmt.Sprintf("bad header %q: %v", head, err)
	}
	if len(body) != n {
		return fmt.Sprintf("torn: header says %d bytes, body has %d", n, len(body))
	}
	if got := sha256.Sum256(body); hex.EncodeToString(got[:]) != sum {
		return "torn: body does not match its hash"
	}
	return ""
}

// TestReaderNeverSeesATornFile SIGKILLs a writer process at random moments,
// over and over, while a reader re-reads the file as fast as it can: every
// read must be a whole file, never empty or partial. It holds for WriteFile
// and for Replace (atomic, not synced) alike.
func TestReaderNeverSeesATornFile(t *testing.T) {
	t.Run("WriteFile", func(t *testing.T) { readerNeverSeesATornFile(t, "") })
	t.Run("Replace", func(t *testing.T) { readerNeverSeesATornFile(t, "1") })
}

func readerNeverSeesATornFile(t *testing.T, replace string) {
	path := filepath.Join(t.TempDir(), "state", "status.json")
	if err := WriteFile(path, payload(0, 10), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			reads++
			if msg := check(b); msg != "" {
				bad = append(bad, msg)
			}
		}
	}()

	const kills = 40
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	writes := 0
	for i := 0; i < kills; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path, writerEnv+"_SEED="+strconv.Itoa(i), writerEnv+"_REPLACE="+replace)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Once the writer is in its loop (one write done), kill it at a
		// random moment of the next few writes.
		one := make([]byte, 1)
		if _, err := stdout.Read(one); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("writer %d wrote nothing: %v: %s", i, err, errOut.String())
		}
		time.Sleep(time.Duration(r.IntN(20000)) * time.Microsecond) // the kill moment is the test's input, not a synchronisation
		cmd.Process.Signal(syscall.SIGKILL)
		rest, _ := io.ReadAll(stdout)
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("writer %d ended on its own (%v): %s", i, err, errOut.String())
		}
		writes += 1 + len(rest)
		if msg := check(mustRead(t, path)); msg != "" {
			t.Fatalf("after kill %d: %s", i, msg)
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d of %d reads saw a broken file, first: %s", len(bad), reads+len(bad), bad[0])
	}
	if writes < kills || reads < kills {
		t.Fatalf("the test did not exercise anything: %d writes, %d reads over %d kills", writes, reads, kills)
	}
	t.Logf("%d kills, %d completed writes, %d whole reads", kills, writes, reads)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "f")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles([]File{{Path: p, Data: []byte("two")}, {Path: p + "2", Data: []byte("three"), Mode: 0o400}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "two" || fi.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %v (mode 0 means 0600)", b, fi.Mode())
	}
	if fi, _ := os.Stat(p + "2"); fi.Mode().Perm() != 0o400 {
		t.Errorf("mode %v, want 0400", fi.Mode())
	}
	dfi, _ := os.Stat(filepath.Dir(p))
	if dfi.Mode().Perm() != 0o700 {
		t.Errorf("parent dir mode %v, want 0700", dfi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 2 {
		t.Errorf("temp files left: %v", ents)
	}

}

// TestWriteFilesMany writes many files at once (concurrently inside) into
// two directories, one path twice: every file holds its content, the twice
// given path its last, and no temp file is left.
func TestWriteFilesMany(t *testing.T) {
	dir := t.TempDir()
	var files []File
	for i := 0; i < 50; i++ {
		sub := filepath.Join(dir, strconv.Itoa(i%2))
		files = append(files, File{Path: filepath.Join(sub, fmt.Sprintf("f%02d", i)), Data: []byte(strconv.Itoa(i)), Mode: 0o640})
	}
	files = append(files, File{Path: files[7].Path, Data: []byte("last")})
	if err := WriteFiles(files); err != nil {
		t.Fatal(err)
	}
	for i, f := range files[:50] {
		want := strconv.Itoa(i)
		if i == 7 {
			want = "last"
		}
		got, err := os.ReadFile(f.Path)
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", f.Path, got, err, want)
		}
	}
	for _, sub := range []string{"0", "1"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		if len(ents) != 25 {
			t.Errorf("%s holds %d entries, want 25 (no temp files left)", sub, len(ents))
		}
	}
}

// TestReplace: the content and mode land under the name, the parent is made
// 0700, and no temp file is left.
func TestReplace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "status.json")
	for _, c := range []string{"one", "two"} {
		if err := Replace(p, []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "two" || err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("content %q, mode %v, err %v; want \"two\", 0640", b, fi.Mode(), err)
	}
	if dfi, _ := os.Stat(filepath.Dir(p)); dfi.Mode().Perm() != 0o700 {
		t.Errorf("parent dir mode %v, want 0700", dfi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}
