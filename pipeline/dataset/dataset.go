// Package dataset reads CycleGAN datasets: it scans the domain folders, decodes images to
// 8-bit RGB at a requested size and caches them. The loader stage reads the train folders
// through it and the evaluator reads the test folders, so both filter and decode alike.
//
// A dataset is an fs.FS (the bundled one, or os.DirFS of a user folder) in the standard
// layout trainA/ trainB/ testA/ testB/, and each domain folder may contain subfolders.
// A file is used when its extension is .png, .jpg or .jpeg (any case), its first bytes are
// the PNG or JPEG signature, and its header declares a size within Limits. Everything else
// is skipped and reported as a *SkipError with one of the SkipReason values, so the stage
// can count skips by reason and log them. Hidden entries (a name starting with ".", such as
// .DS_Store or the AppleDouble file ._x.jpg) and symbolic links are skipped without being
// opened, so a link loop or a link leading out of the domain folder is never followed.
//
// Decoded images are *image.NRGBA with alpha 255 everywhere: EXIF orientation is applied,
// every colour model is converted to 8-bit RGB, and transparent pixels are composited onto
// white (see Flatten). Images are resized to a square of the load size, stretching
// non-square ones as the reference CycleGAN implementation does.
package dataset

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
)

// SkipReason is the cause of skipping an input file. The set is fixed, so a metric can
// carry it as a label. AllSkipReasons lists it.
type SkipReason string

// Reasons for skipping an input file.
const (
	ReasonExtension  SkipReason = "extension"   // not .png, .jpg or .jpeg
	ReasonSignature  SkipReason = "signature"   // content is not PNG or JPEG
	ReasonHidden     SkipReason = "hidden"      // name starts with "."
	ReasonSymlink    SkipReason = "symlink"     // symbolic link, never followed
	ReasonNotRegular SkipReason = "not_regular" // device, pipe, socket or other special file
	ReasonTooLarge   SkipReason = "too_large"   // file bytes or declared pixels over Limits
	ReasonTruncated  SkipReason = "truncated"   // data ends before the image does
	ReasonCorrupt    SkipReason = "corrupt"     // malformed header or image data
	ReasonUnreadable SkipReason = "unreadable"  // open, stat, read or list failed
)

// AllSkipReasons returns every SkipReason, so that counters can start at zero.
func AllSkipReasons() []SkipReason {
	return []SkipReason{
		ReasonExtension, ReasonSignature, ReasonHidden, ReasonSymlink, ReasonNotRegular,
		ReasonTooLarge, ReasonTruncated, ReasonCorrupt, ReasonUnreadable,
	}
}

// SkipError reports an input file or folder that the loader does not use.
type SkipError struct {
	Path   string // path within the dataset's fs.FS
	Reason SkipReason
	Err    error // detail, or nil when the reason is enough
}

func (e *SkipError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("skip %s: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("skip %s: %s: %v", e.Path, e.Reason, e.Err)
}

func (e *SkipError) Unwrap() error { return e.Err }

var (
	// ErrEmptyDomain is returned when a domain folder holds no usable image.
	ErrEmptyDomain = errors.New("domain folder has no usable image")
	// ErrInvalidOptions is returned for a load size or other option out of range.
	ErrInvalidOptions = errors.New("invalid dataset options")
)

// Default folders of the two training domains.
const (
	DefaultDirA = "trainA"
	DefaultDirB = "trainB"
)

// DefaultCacheBytes is the default budget of the decoded-image cache (512 MiB). The
// bundled training set at the cpu preset's load size (72 px) takes about 61 MB.
const DefaultCacheBytes = 512 << 20

// Domain is the list of usable image files of one domain folder.
type Domain struct {
	Dir   string   // folder within the fs.FS, such as "trainA"
	Files []string // paths within the fs.FS, sorted
}

// Len returns the number of images in the domain.
func (d Domain) Len() int { return len(d.Files) }

// ScanDomain walks dir in fsys, including subfolders, and returns the files that look like
// usable images, sorted, together with a SkipError for every entry it left out. Each
// candidate is opened to check its signature and header, but not decoded in full, so a
// file with damaged image data may still fail later in LoadImage.
//
// It returns an error wrapping fs.ErrNotExist when dir is missing and ErrEmptyDomain when
// no usable image remains. Both errors name dir.
func ScanDomain(ctx context.Context, fsys fs.FS, dir string, limits Limits) (Domain, []*SkipError, error) {
	var (
		files []string
		skips []*SkipError
	)
	skip := func(p string, reason SkipReason, err error) {
		skips = append(skips, &SkipError{Path: p, Reason: reason, Err: err})
	}

	walkErr := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			if p == dir {
				return err
			}
			// A subfolder that cannot be listed is skipped. WalkDir calls again with the
			// error after a failed ReadDir, so the folder itself was already visited.
			skip(p, ReasonUnreadable, err)
			return nil
		}
		if p == dir {
			return nil
		}

		name := d.Name()
		switch {
		case strings.HasPrefix(name, "."):
			skip(p, ReasonHidden, nil)
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			// WalkDir reports a link as a non-folder entry and never descends into it.
			skip(p, ReasonSymlink, nil)
			return nil
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			skip(p, ReasonNotRegular, fmt.Errorf("mode %v", d.Type()))
			return nil
		case !hasImageExtension(name):
			skip(p, ReasonExtension, nil)
			return nil
		}

		if s := inspectFile(fsys, p, limits); s != nil {
			skips = append(skips, s)
			return nil
		}
		files = append(files, p)
		return nil
	})
	if walkErr != nil {
		return Domain{}, skips, fmt.Errorf("scan domain folder %s: %w", dir, walkErr)
	}

	slices.Sort(files)
	if len(files) == 0 {
		return Domain{}, skips, fmt.Errorf("scan domain folder %s: %w (%s)",
			dir, ErrEmptyDomain, summarizeSkips(skips))
	}
	return Domain{Dir: dir, Files: files}, skips, nil
}

func hasImageExtension(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// inspectFile checks size, signature and header of one file without decoding the pixels.
func inspectFile(fsys fs.FS, name string, limits Limits) *SkipError {
	f, err := fsys.Open(name)
	if err != nil {
		return &SkipError{Path: name, Reason: ReasonUnreadable, Err: err}
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return &SkipError{Path: name, Reason: ReasonUnreadable, Err: err}
	}
	if max := limits.maxFileBytes(); info.Size() > max {
		return &SkipError{Path: name, Reason: ReasonTooLarge,
			Err: fmt.Errorf("file is %d bytes, limit %d", info.Size(), max)}
	}

	head := make([]byte, signatureBytes)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return &SkipError{Path: name, Reason: ReasonUnreadable, Err: err}
	}
	head = head[:n]
	if !hasImageSignature(head) {
		return &SkipError{Path: name, Reason: ReasonSignature, Err: errNoSignature}
	}

	if _, reason, err := checkHeader(io.MultiReader(bytes.NewReader(head), f), limits); err != nil {
		return &SkipError{Path: name, Reason: reason, Err: err}
	}
	return nil
}

// summarizeSkips counts skips by reason, in the order of AllSkipReasons.
func summarizeSkips(skips []*SkipError) string {
	if len(skips) == 0 {
		return "no files"
	}
	counts := make(map[SkipReason]int)
	for _, s := range skips {
		counts[s.Reason]++
	}
	var parts []string
	for _, r := range AllSkipReasons() {
		if counts[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
		}
	}
	return "skipped: " + strings.Join(parts, ", ")
}

// Options configures a Dataset. Only LoadSize has no default.
type Options struct {
	// LoadSize is the side of the square images the dataset returns, in pixels (72 for the
	// cpu preset, 286 for the reference preset).
	LoadSize int
	// DirA and DirB are the domain folders. Empty means DefaultDirA and DefaultDirB.
	DirA, DirB string
	Limits     Limits
	// CacheBytes is the budget of the decoded-image cache in bytes: 0 means
	// DefaultCacheBytes, a negative value turns the cache off. A cached image takes
	// 4 × LoadSize² bytes plus a small overhead.
	CacheBytes int64
}

// Dataset holds the scanned domains of a dataset and loads their images at the load size.
// Its methods are safe for concurrent use.
type Dataset struct {
	A, B Domain

	fsys     fs.FS
	loadSize int
	limits   Limits
	cache    *fillOnceCache

	mu     sync.Mutex
	failed map[string]*SkipError // files that failed to load, never read again
}

// Open scans both domain folders of fsys and returns the dataset with every SkipError
// found while scanning. An empty or missing domain folder is an error naming the folder.
func Open(ctx context.Context, fsys fs.FS, opts Options) (*Dataset, []*SkipError, error) {
	if opts.LoadSize <= 0 {
		return nil, nil, fmt.Errorf("load size %d: %w", opts.LoadSize, ErrInvalidOptions)
	}
	dirA := cmp.Or(opts.DirA, DefaultDirA)
	dirB := cmp.Or(opts.DirB, DefaultDirB)

	domA, skipsA, err := ScanDomain(ctx, fsys, dirA, opts.Limits)
	if err != nil {
		return nil, skipsA, err
	}
	domB, skipsB, err := ScanDomain(ctx, fsys, dirB, opts.Limits)
	skips := append(skipsA, skipsB...)
	if err != nil {
		return nil, skips, err
	}

	budget := opts.CacheBytes
	if budget == 0 {
		budget = DefaultCacheBytes
	}
	return &Dataset{
		A:        domA,
		B:        domB,
		fsys:     fsys,
		loadSize: opts.LoadSize,
		limits:   opts.Limits,
		cache:    newFillOnceCache(budget),
		failed:   make(map[string]*SkipError),
	}, skips, nil
}

// LoadSize returns the side of the images the dataset returns, in pixels.
func (d *Dataset) LoadSize() int { return d.loadSize }

// Pair loads image ia of domain A and image ib of domain B.
func (d *Dataset) Pair(ia, ib int) (a, b *image.NRGBA, err error) {
	if ia < 0 || ia >= d.A.Len() {
		return nil, nil, fmt.Errorf("image index %d of %s out of range [0, %d): %w", ia, d.A.Dir, d.A.Len(), ErrInvalidOptions)
	}
	if ib < 0 || ib >= d.B.Len() {
		return nil, nil, fmt.Errorf("image index %d of %s out of range [0, %d): %w", ib, d.B.Dir, d.B.Len(), ErrInvalidOptions)
	}
	if a, err = d.Load(d.A.Files[ia]); err != nil {
		return nil, nil, err
	}
	if b, err = d.Load(d.B.Files[ib]); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// Load returns the image at name, decoded and resized to the load size, from the cache
// when it is there. The returned image is shared with the cache and must not be modified.
// A file that failed once returns the same *SkipError again without being read, so the
// caller can count each failing file once by comparing pointers or paths.
func (d *Dataset) Load(name string) (*image.NRGBA, error) {
	if img, ok := d.cache.get(name); ok {
		return img, nil
	}
	d.mu.Lock()
	failure := d.failed[name]
	d.mu.Unlock()
	if failure != nil {
		return nil, failure
	}

	img, err := LoadImage(d.fsys, name, d.loadSize, d.limits)
	if err != nil {
		var skip *SkipError
		if errors.As(err, &skip) {
			d.mu.Lock()
			d.failed[name] = skip
			d.mu.Unlock()
		}
		return nil, err
	}
	d.cache.add(name, img)
	return img, nil
}

// CachedBytes returns the bytes of pixel data held in the cache.
func (d *Dataset) CachedBytes() int64 { return d.cache.size() }

// fillOnceCache keeps decoded images until its byte budget is reached and then stops
// adding, without ever evicting. The sampler visits A in a fresh random order every epoch and
// draws B uniformly, so an LRU cache smaller than the data set would hit no more often
// than this one, and it would churn.
type fillOnceCache struct {
	budget int64 // bytes, where 0 or less disables the cache

	mu     sync.Mutex
	used   int64
	images map[string]*image.NRGBA
}

func newFillOnceCache(budget int64) *fillOnceCache {
	return &fillOnceCache{budget: budget, images: make(map[string]*image.NRGBA)}
}

func (c *fillOnceCache) get(name string) (*image.NRGBA, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.images[name]
	return img, ok
}

func (c *fillOnceCache) add(name string, img *image.NRGBA) {
	cost := int64(len(img.Pix))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.images[name]; ok || c.used+cost > c.budget {
		return
	}
	c.images[name] = img
	c.used += cost
}

func (c *fillOnceCache) size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}
