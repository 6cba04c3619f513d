package dataset

import (
	"context"
	"errors"
	"image"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gocyclegan/cyclegan/datasets"
)

// symlink creates a symbolic link at dir/name pointing to target, or skips the test where
// the file system does not support links.
func symlink(t *testing.T, dir, name, target string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
		t.Skipf("symbolic links unavailable: %v", err)
	}
}

func skipReasons(skips []*SkipError) map[string]SkipReason {
	m := make(map[string]SkipReason, len(skips))
	for _, s := range skips {
		m[s.Path] = s.Reason
	}
	return m
}

func TestScanDomainTree(t *testing.T) {
	root := t.TempDir()
	small := encodePNG(t, uniformNRGBA(4, 4, color.NRGBA{9, 9, 9, 255}))
	photo := encodeJPEG(t, uniformNRGBA(4, 4, color.NRGBA{9, 9, 9, 255}))

	files := map[string][]byte{
		"trainA/b.png":                    small,
		"trainA/a.jpg":                    photo,
		"trainA/sub/c.JPEG":               photo,
		"trainA/sub/deeper/d.PNG":         small,
		"trainA/sub/jpeg-named.png":       photo, // wrong extension, right signature: kept
		"trainA/halfdata.png":             small[:len(small)-20],
		"trainA/.DS_Store":                []byte("\x00\x00\x00\x01Bud1"),
		"trainA/._a.jpg":                  []byte("\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"),
		"trainA/.hidden/e.png":            small,
		"trainA/notes.txt":                []byte("notes"),
		"trainA/text.png":                 []byte("not an image at all"),
		"trainA/cut.png":                  small[:20],
		"trainA/huge.png":                 hugePNGHeader(100000, 100000),
		"trainA/sub/readme":               []byte("no extension"),
		"outside/f.png":                   small,
		"trainA/sub/deeper/deepest/g.jpg": photo,
	}
	for name, data := range files {
		writeFile(t, root, name, data)
	}
	symlink(t, root, "trainA/sub/loop", "..")                 // folder linking to its parent
	symlink(t, root, "trainA/out", "../outside")              // folder outside the domain
	symlink(t, root, "trainA/linked.png", "../outside/f.png") // file outside the domain

	dom, skips, err := ScanDomain(context.Background(), os.DirFS(root), "trainA", Limits{})
	if err != nil {
		t.Fatalf("ScanDomain: %v", err)
	}

	// halfdata.png has a valid header, so only a full decode finds the damage.
	wantFiles := []string{
		"trainA/a.jpg", "trainA/b.png", "trainA/halfdata.png", "trainA/sub/c.JPEG",
		"trainA/sub/deeper/d.PNG", "trainA/sub/deeper/deepest/g.jpg", "trainA/sub/jpeg-named.png",
	}
	if !slices.Equal(dom.Files, wantFiles) {
		t.Errorf("files\n got %q\nwant %q", dom.Files, wantFiles)
	}
	if dom.Dir != "trainA" || dom.Len() != len(wantFiles) {
		t.Errorf("domain %q with %d files, want trainA with %d", dom.Dir, dom.Len(), len(wantFiles))
	}

	wantSkips := map[string]SkipReason{
		"trainA/.DS_Store":  ReasonHidden,
		"trainA/._a.jpg":    ReasonHidden,
		"trainA/.hidden":    ReasonHidden,
		"trainA/notes.txt":  ReasonExtension,
		"trainA/sub/readme": ReasonExtension,
		"trainA/text.png":   ReasonSignature,
		"trainA/cut.png":    ReasonTruncated,
		"trainA/huge.png":   ReasonTooLarge,
		"trainA/sub/loop":   ReasonSymlink,
		"trainA/out":        ReasonSymlink,
		"trainA/linked.png": ReasonSymlink,
	}
	got := skipReasons(skips)
	for p, want := range wantSkips {
		if got[p] != want {
			t.Errorf("skip of %s: reason %q, want %q", p, got[p], want)
		}
	}
	if len(skips) != len(wantSkips) {
		t.Errorf("%d skips, want %d: %v", len(skips), len(wantSkips), skips)
	}
}

func TestScanDomainSymlinkLoop(t *testing.T) {
	root := t.TempDir()
	small := encodePNG(t, uniformNRGBA(4, 4, color.NRGBA{1, 2, 3, 255}))
	writeFile(t, root, "trainA/a.png", small)
	writeFile(t, root, "trainB/b.png", small)
	symlink(t, root, "trainA/up", "..")  // loops back to the dataset root
	symlink(t, root, "trainA/self", ".") // loops onto itself
	symlink(t, root, "trainB/toA", "../trainA")

	dom, skips, err := ScanDomain(context.Background(), os.DirFS(root), "trainA", Limits{})
	if err != nil {
		t.Fatalf("ScanDomain: %v", err)
	}
	if !slices.Equal(dom.Files, []string{"trainA/a.png"}) {
		t.Errorf("files %q, want only trainA/a.png", dom.Files)
	}
	got := skipReasons(skips)
	for _, p := range []string{"trainA/up", "trainA/self"} {
		if got[p] != ReasonSymlink {
			t.Errorf("skip of %s: reason %q, want %q", p, got[p], ReasonSymlink)
		}
	}
}

func TestScanDomainNoUsableImage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "emptyA"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "junkA/.DS_Store", []byte("x"))
	writeFile(t, root, "junkA/readme.txt", []byte("x"))
	writeFile(t, root, "junkA/fake.png", []byte("x"))

	tests := []struct {
		dir     string
		wantErr error
		wantMsg []string
	}{
		{"emptyA", ErrEmptyDomain, []string{"emptyA", "no files"}},
		{"junkA", ErrEmptyDomain, []string{"junkA", "1 extension", "1 signature", "1 hidden"}},
		{"missingA", fs.ErrNotExist, []string{"missingA"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			_, _, err := ScanDomain(context.Background(), os.DirFS(root), tt.dir, Limits{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
		})
	}
}

func TestScanDomainCanceled(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "trainA/a.png", encodePNG(t, uniformNRGBA(4, 4, color.NRGBA{A: 255})))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := ScanDomain(ctx, os.DirFS(root), "trainA", Limits{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestScanBundledDataset(t *testing.T) {
	fsys, err := datasets.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"trainA": 1483, "trainB": 1483, "testA": 153, "testB": 153}
	for dir, n := range want {
		dom, skips, err := ScanDomain(context.Background(), fsys, dir, Limits{})
		if err != nil {
			t.Fatalf("ScanDomain(%s): %v", dir, err)
		}
		if dom.Len() != n {
			t.Errorf("%s: %d images, want %d", dir, dom.Len(), n)
		}
		if len(skips) != 0 {
			t.Errorf("%s: %d skips, want none; first: %v", dir, len(skips), skips[0])
		}
	}
}

func TestOpenBundledPairs(t *testing.T) {
	fsys, err := datasets.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	ds, skips, err := Open(context.Background(), fsys, Options{LoadSize: 72})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if len(skips) != 0 {
		t.Errorf("%d skips, want none", len(skips))
	}
	if ds.A.Dir != DefaultDirA || ds.B.Dir != DefaultDirB {
		t.Errorf("domains %q and %q, want %q and %q", ds.A.Dir, ds.B.Dir, DefaultDirA, DefaultDirB)
	}

	a, b, err := ds.Pair(0, ds.B.Len()-1)
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	for _, img := range []*image.NRGBA{a, b} {
		if img.Rect != image.Rect(0, 0, 72, 72) {
			t.Errorf("bounds %v, want 72×72", img.Rect)
		}
		if !img.Opaque() {
			t.Errorf("image is not opaque")
		}
	}
	if got, want := ds.CachedBytes(), int64(2*72*72*4); got != want {
		t.Errorf("cached %d bytes, want %d", got, want)
	}
	again, err := ds.Load(ds.A.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	if again != a {
		t.Errorf("second Load did not return the cached image")
	}

	if _, _, err := ds.Pair(ds.A.Len(), 0); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("Pair out of range: error %v, want ErrInvalidOptions", err)
	}
}

func TestDatasetCacheBudget(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"trainA/1.png", "trainA/2.png", "trainA/3.png", "trainB/1.png"} {
		writeFile(t, root, name, encodePNG(t, uniformNRGBA(8, 8, color.NRGBA{5, 6, 7, 255})))
	}
	perImage := int64(4 * 4 * 4) // load size 4, 4 bytes a pixel

	tests := []struct {
		name       string
		cacheBytes int64
		wantCached int64
	}{
		{"default budget", 0, 3 * perImage},
		{"room for two", 2*perImage + perImage/2, 2 * perImage},
		{"disabled", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, _, err := Open(context.Background(), os.DirFS(root), Options{LoadSize: 4, CacheBytes: tt.cacheBytes})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range ds.A.Files {
				if _, err := ds.Load(name); err != nil {
					t.Fatal(err)
				}
			}
			if got := ds.CachedBytes(); got != tt.wantCached {
				t.Errorf("cached %d bytes, want %d", got, tt.wantCached)
			}
		})
	}
}

func TestDatasetConcurrentLoad(t *testing.T) {
	fsys, err := datasets.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := Open(context.Background(), fsys, Options{LoadSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 4, 50
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range perWorker {
				// Workers overlap on half their indices, so some loads race for one file.
				if _, _, err := ds.Pair((w*perWorker/2+i)%ds.A.Len(), i%ds.B.Len()); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Errorf("Pair: %v", err)
		}
	}
	// Distinct A indices 0..124 and B indices 0..49, 16×16×4 bytes each.
	if got, want := ds.CachedBytes(), int64((125+50)*16*16*4); got != want {
		t.Errorf("cached %d bytes, want %d", got, want)
	}
}

func TestDatasetRemembersFailure(t *testing.T) {
	root := t.TempDir()
	good := encodePNG(t, uniformNRGBA(8, 8, color.NRGBA{5, 6, 7, 255}))
	writeFile(t, root, "trainA/good.png", good)
	writeFile(t, root, "trainA/half.png", good[:len(good)-20])
	writeFile(t, root, "trainB/good.png", good)

	ds, _, err := Open(context.Background(), os.DirFS(root), Options{LoadSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	_, first := ds.Load("trainA/half.png")
	var skip *SkipError
	if !errors.As(first, &skip) || skip.Reason != ReasonTruncated {
		t.Fatalf("first Load: error %v, want a truncated *SkipError", first)
	}

	// Once remembered, the failure is returned without reading the file again.
	if err := os.Remove(filepath.Join(root, "trainA", "half.png")); err != nil {
		t.Fatal(err)
	}
	_, second := ds.Load("trainA/half.png")
	if second != first {
		t.Errorf("second Load returned %v, want the first error again", second)
	}
}

func TestOpenErrors(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "trainA/a.png", encodePNG(t, uniformNRGBA(4, 4, color.NRGBA{A: 255})))
	if err := os.MkdirAll(filepath.Join(root, "trainB"), 0o755); err != nil {
		t.Fatal(err)
	}

	_, _, err := Open(context.Background(), os.DirFS(root), Options{LoadSize: 8})
	if !errors.Is(err, ErrEmptyDomain) || !strings.Contains(err.Error(), "trainB") {
		t.Errorf("empty trainB: error %v, want ErrEmptyDomain naming trainB", err)
	}
	_, _, err = Open(context.Background(), os.DirFS(root), Options{})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("zero load size: error %v, want ErrInvalidOptions", err)
	}
}
