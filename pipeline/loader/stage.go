package loader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gocyclegan/cyclegan/datasets"
	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
	"github.com/gocyclegan/cyclegan/pipeline/dataset"
)

var (
	// ErrInvalidConfig is returned by Config.Validate and New for a setting or dependency
	// that breaks its rule.
	ErrInvalidConfig = errors.New("invalid loader configuration")
	// ErrNoUsableImage is returned by Run when every image of a domain failed to decode.
	ErrNoUsableImage = errors.New("no image of the domain decodes")
)

// Deps are the connections, registry and logger that the loader shares with the other
// stages of a process, and optionally the dataset.
type Deps struct {
	JetStream  jetstream.JetStream   // nil means Topology.JetStream
	Topology   *pipeline.Topology    // the run's streams and buckets; required
	Registerer prometheus.Registerer // receives the loader's metrics; nil registers nothing
	Metrics    *pipeline.Metrics     // publisher metrics; nil counts into unregistered collectors
	Logger     *slog.Logger          // nil discards the records

	// Dataset is the dataset as a file system with trainA and trainB at its root. Nil
	// opens Config.Dataset, or the bundled dataset when that is empty.
	Dataset fs.FS
}

// Stage is the loader: it publishes raw pairs of the dataset's train images to the raw
// stream until the run ends.
type Stage struct {
	cfg             Config
	run             string
	js              jetstream.JetStream
	topo            *pipeline.Topology
	pipelineMetrics *pipeline.Metrics
	metrics         *metrics
	log             *slog.Logger

	fsys   fs.FS
	source string // origin of fsys for logs: a directory or the bundled dataset
}

// New checks cfg and deps and returns the loader of the run that deps.Topology belongs
// to. It reads nothing yet: Run scans the dataset.
func New(cfg Config, deps Deps) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Topology == nil {
		return nil, fmt.Errorf("%w: Deps.Topology is nil", ErrInvalidConfig)
	}
	js := deps.JetStream
	if js == nil {
		js = deps.Topology.JetStream
	}
	if js == nil {
		return nil, fmt.Errorf("%w: neither Deps.JetStream nor Deps.Topology.JetStream is set", ErrInvalidConfig)
	}
	run := deps.Topology.Run
	if err := checkPairFits(cfg.LoadSize, run, js.Conn().MaxPayload()); err != nil {
		return nil, err
	}

	fsys, source, err := datasetFS(cfg.Dataset, deps.Dataset)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registerer, run)
	if err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stage{
		cfg:             cfg,
		run:             run,
		js:              js,
		topo:            deps.Topology,
		pipelineMetrics: deps.Metrics,
		metrics:         m,
		log:             log.With("stage", "loader", "run", run),
		fsys:            fsys,
		source:          source,
	}, nil
}

// datasetFS returns the dataset's file system: supplied if not nil, else the directory
// dir, else the bundled dataset.
func datasetFS(dir string, supplied fs.FS) (fs.FS, string, error) {
	switch {
	case supplied != nil:
		return supplied, "file system supplied by the caller", nil
	case dir != "":
		info, err := os.Stat(dir)
		if err != nil {
			return nil, "", fmt.Errorf("%w: --dataset %s: %w", ErrInvalidConfig, dir, err)
		}
		if !info.IsDir() {
			return nil, "", fmt.Errorf("%w: --dataset %s is not a directory", ErrInvalidConfig, dir)
		}
		return os.DirFS(dir), dir, nil
	default:
		fsys, err := datasets.Bundled()
		if err != nil {
			return nil, "", err
		}
		return fsys, "bundled " + datasets.DefaultName, nil
	}
}

// publishHeaderAllowance bounds the NATS header bytes of a publish (Nats-Msg-Id and
// Nats-Expected-Stream with a 32-byte run id take under 150), which count against the
// server's max payload.
const publishHeaderAllowance = 256

// checkPairFits rejects a load size whose raw pairs, with the longest image names, would
// exceed the server's max payload. maxPayload 0 (not known) accepts every size.
func checkPairFits(loadSize int, run string, maxPayload int64) error {
	if maxPayload <= 0 {
		return nil
	}
	size := messages.PairHeaderSize + len(run) + 2*messages.MaxNameLength + 2*loadSize*loadSize*messages.Channels
	if err := messages.CheckPayloadSize(size, maxPayload-publishHeaderAllowance); err != nil {
		return fmt.Errorf("%w: --load-size %d: %w; lower the load size or raise the NATS server's max_payload",
			ErrInvalidConfig, loadSize, err)
	}
	return nil
}

// Run scans the dataset, finds the pair index to resume from and publishes raw pairs
// until ctx ends, the run state turns finished or failed, or MaxPairs pairs are
// published. Each publish waits while the raw stream is full. Run returns nil in those
// three cases, and an error when the dataset cannot be read (an empty domain folder
// names the folder), when every image of a domain fails to decode, or when publishing
// fails for good.
//
// A run state that is already finished or failed when Run starts makes it return nil at
// once. So a caller that continues a finished run writes the running state before it
// starts the loader.
func (s *Stage) Run(ctx context.Context) error {
	ds, err := s.openDataset(ctx)
	if err != nil {
		return err
	}
	store, err := pipeline.NewRunStore(s.topo.Runs, s.run, nil, s.log)
	if err != nil {
		return err
	}
	start, err := s.resumeIndex(ctx, store)
	if errors.Is(err, errRunEnded) {
		s.log.Info("loader not starting because the run has ended", "reason", err)
		return nil
	}
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	wg.Go(func() { watchRunEnd(ctx, store, cancel, s.log) })

	pub, err := pipeline.NewPublisher(ctx, s.js, pipeline.PublisherOptions{
		Stream:  s.topo.RawStream,
		Subject: s.topo.RawSubject,
		Run:     s.run,
		Stage:   "loader",
		Metrics: s.pipelineMetrics,
		Logger:  s.log,
	})
	if err != nil {
		return err
	}
	sampler, err := NewSampler(ds.A.Len(), ds.B.Len(), uint64(s.cfg.Seed), start)
	if err != nil {
		return err
	}
	s.log.Info("loader started", "dataset", s.source, "images_A", ds.A.Len(), "images_B", ds.B.Len(),
		"pairs_per_epoch", sampler.PairsPerEpoch(), "start_pair", start, "load_size", s.cfg.LoadSize)

	published, err := s.publishPairs(ctx, sampler, newImageSource(ds, s.cfg.CacheBytes, s.metrics, s.log), pub)
	if err != nil {
		return err
	}
	reason := "max pairs published"
	if cause := context.Cause(ctx); cause != nil {
		reason = cause.Error()
	}
	s.log.Info("loader stopped", "reason", reason, "pairs_published", published, "next_pair", sampler.Position())
	return nil
}

// openDataset scans trainA and trainB, counts and logs the files skipped, and returns
// the dataset. Decoded images are cached by imageSource, so the dataset's own cache is
// off.
func (s *Stage) openDataset(ctx context.Context) (*dataset.Dataset, error) {
	ds, skips, err := dataset.Open(ctx, s.fsys, dataset.Options{
		LoadSize:   s.cfg.LoadSize,
		Limits:     dataset.Limits{MaxPixels: int64(s.cfg.MaxPixels)},
		CacheBytes: -1,
	})
	byReason := map[dataset.SkipReason]int{}
	logSkip := newSkipLogLimit()
	for _, skip := range skips {
		s.metrics.skip(skip.Reason)
		byReason[skip.Reason]++
		logSkip.Do(func() {
			s.log.Warn("skipping dataset file", "path", skip.Path, "reason", skip.Reason, "err", skip.Err)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", s.source, err)
	}
	if len(skips) > 0 {
		s.log.Info("dataset scanned with files skipped", "skipped", len(skips), "by_reason", byReason)
	}
	return ds, nil
}

// publishPairs publishes the sampler's pairs until ctx ends or MaxPairs are published,
// and returns the number published.
func (s *Stage) publishPairs(ctx context.Context, sampler *Sampler, im *imageSource, pub *pipeline.Publisher) (int, error) {
	ds := im.ds
	var buf []byte
	published := 0
	var lastEpochLog time.Time
	for s.cfg.MaxPairs == 0 || published < s.cfg.MaxPairs {
		if ctx.Err() != nil {
			return published, nil
		}
		index := sampler.Position()
		ia, ib, epoch := sampler.Next()
		if index%int64(sampler.PairsPerEpoch()) == 0 {
			// On a tiny dataset epochs start many times a second, so at most one a minute
			// is logged at info and the others at debug.
			level := slog.LevelDebug
			if now := time.Now(); now.Sub(lastEpochLog) >= time.Minute {
				level, lastEpochLog = slog.LevelInfo, now
			}
			s.log.Log(ctx, level, "loader epoch started", "epoch", epoch, "pair", index)
		}

		pixA, pathA, err := im.load(ds.A, domainA, ia)
		if err != nil {
			return published, err
		}
		pixB, pathB, err := im.load(ds.B, domainB, ib)
		if err != nil {
			return published, err
		}
		pair := messages.Pair{
			Kind:       messages.KindRaw,
			Run:        s.run,
			Sequence:   uint64(index),
			Epoch:      uint32(epoch),
			NameA:      wireName(ds.A.Dir, pathA),
			NameB:      wireName(ds.B.Dir, pathB),
			Height:     s.cfg.LoadSize,
			Width:      s.cfg.LoadSize,
			LoadHeight: s.cfg.LoadSize,
			LoadWidth:  s.cfg.LoadSize,
			A:          pixA,
			B:          pixB,
		}
		// The publisher has copied buf into the connection's buffer when Publish
		// returns, so the next pair may reuse it.
		buf, err = messages.AppendPair(buf[:0], &pair)
		if err != nil {
			return published, fmt.Errorf("encode pair %d: %w", index, err)
		}
		if _, err := pub.Publish(ctx, MessageID(s.run, epoch, index), buf); err != nil {
			if ctx.Err() != nil {
				return published, nil
			}
			return published, err
		}
		s.metrics.pairs.Inc()
		published++
	}
	return published, nil
}

// MessageID returns the Nats-Msg-Id of the raw pair with global index index, which falls
// in epoch. A restarted loader sends the same ids for the pairs it sends again, so the
// raw stream stores each pair once within its duplicate window.
func MessageID(run string, epoch int, index int64) string {
	return fmt.Sprintf("%s.raw.e%d.p%d", run, epoch, index)
}
