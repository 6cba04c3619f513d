package datasets

import (
	"image/png"
	"io/fs"
	"path"
	"testing"
)

func TestBundledLayout(t *testing.T) {
	fsys, err := Bundled()
	if err != nil {
		t.Fatalf("Bundled: %v", err)
	}
	want := map[string]int{"trainA": 1483, "trainB": 1483, "testA": 153, "testB": 153}
	for dir, n := range want {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		if len(entries) != n {
			t.Errorf("%s holds %d files, want %d", dir, len(entries), n)
		}
	}
}

func TestBundledImagesDecode(t *testing.T) {
	fsys, err := Bundled()
	if err != nil {
		t.Fatalf("Bundled: %v", err)
	}
	for _, dir := range []string{"testA", "testB"} {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
		f, err := fsys.Open(path.Join(dir, entries[0].Name()))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("decode %s/%s: %v", dir, entries[0].Name(), err)
		}
		if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Errorf("%s/%s is %v, want 64x64", dir, entries[0].Name(), b)
		}
	}
}
