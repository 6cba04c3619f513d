package loader

import (
	"errors"
	"fmt"
	"image/color"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

// imageSource loads the HWC RGB pixels of dataset images at the load size. It replaces an
// image that fails to decode by the next usable one of its domain, and keeps decoded
// pixels in a cache up to a byte budget. It is not safe for concurrent use.
type imageSource struct {
	ds      *dataset.Dataset
	metrics *metrics
	log     *slog.Logger
	logSkip *rate.Sometimes // rate limit of the records about skipped files

	cacheBudget int64 // bytes; 0 or less disables the cache
	cacheUsed   int64 // bytes
	cacheFull   bool  // whether an image did not fit the budget, logged once
	cache       map[string][]uint8

	failed map[string]bool // files that failed to decode
}

func newImageSource(ds *dataset.Dataset, cacheBudget int64, m *metrics, log *slog.Logger) *imageSource {
	return &imageSource{
		ds:          ds,
		metrics:     m,
		log:         log,
		logSkip:     newSkipLogLimit(),
		cacheBudget: cacheBudget,
		cache:       make(map[string][]uint8),
		failed:      make(map[string]bool),
	}
}

// newSkipLogLimit returns the rate limit of the records about skipped files: the first
// 20, then one every 10 seconds. The skipped-files counter counts every one.
func newSkipLogLimit() *rate.Sometimes {
	return &rate.Sometimes{First: 20, Interval: 10 * time.Second}
}

// load returns the pixels of image idx of dom and its path. When that image fails to
// decode it is counted and logged as skipped, and the next image of dom (wrapping
// around) is tried, so a damaged file changes the pair but not its sequence number. The
// returned pixels are shared with the cache and must not be modified.
func (im *imageSource) load(dom dataset.Domain, domain string, idx int) ([]uint8, string, error) {
	n := dom.Len()
	for tried := range n {
		path := dom.Files[(idx+tried)%n]
		if im.failed[path] {
			continue
		}
		if pix, ok := im.cache[path]; ok {
			return pix, path, nil
		}
		img, err := im.ds.Load(path)
		if err != nil {
			var skip *dataset.SkipError
			if !errors.As(err, &skip) {
				return nil, "", fmt.Errorf("load %s: %w", path, err)
			}
			im.failed[path] = true
			im.metrics.skip(skip.Reason)
			im.logSkip.Do(func() {
				im.log.Warn("skipping image that failed to decode", "path", skip.Path, "reason", skip.Reason, "err", skip.Err, "domain", domain)
			})
			continue
		}

		if domain == domainA {
			im.metrics.imagesA.Inc()
		} else {
			im.metrics.imagesB.Inc()
		}
		// Dataset images are opaque, so the background never shows.
		pix, err := messages.AppendHWCFromImage(nil, img, color.White)
		if err != nil {
			return nil, "", fmt.Errorf("convert %s to RGB: %w", path, err)
		}
		im.addToCache(path, pix)
		return pix, path, nil
	}
	return nil, "", fmt.Errorf("%w: all %d images of %s failed to decode", ErrNoUsableImage, n, dom.Dir)
}

// addToCache keeps pix while the budget allows. The cache never evicts, because the
// sampler visits every A image once per epoch in a new random order and draws B
// uniformly. Evicting the least recently used image would therefore not raise the hit
// rate of a cache smaller than the dataset.
func (im *imageSource) addToCache(path string, pix []uint8) {
	if im.cacheBudget <= 0 {
		return
	}
	cost := int64(len(pix))
	if im.cacheUsed+cost > im.cacheBudget {
		if !im.cacheFull {
			im.cacheFull = true
			im.log.Info("decoded-image cache is full, further images are decoded on every use",
				"cache_bytes", im.cacheUsed, "budget_bytes", im.cacheBudget, "cached_images", len(im.cache))
		}
		return
	}
	im.cache[path] = pix
	im.cacheUsed += cost
	im.metrics.cacheBytes.Set(float64(im.cacheUsed))
}

// wireName returns path relative to the domain folder dir, made fit for a pair message:
// control characters and invalid UTF-8 become '?', and a name longer than
// messages.MaxNameLength bytes keeps its end, where the file name is.
func wireName(dir, path string) string {
	name := strings.TrimPrefix(path, dir+"/")
	name = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(name, "?"))
	for len(name) > messages.MaxNameLength {
		_, size := utf8.DecodeRuneInString(name)
		name = name[size:]
	}
	return name
}
