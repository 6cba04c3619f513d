// Package pipeline is the runtime every CycleGAN stage shares: settings,
// the NATS JetStream connection and topology, publishing with backpressure,
// consuming with explicit acks, the run state, an embedded NATS server, the
// metrics and health HTTP server, and graceful shutdown.
//
// # Model
//
// The stages (loader → augmenter → trainer → evaluator) exchange messages
// through JetStream streams that a run id namespaces, so that several runs
// share one server:
//
//	CYCLEGAN_RAW_<run>          cyclegan.<run>.raw          work queue, bounded bytes, discard new
//	CYCLEGAN_TRAIN_<run>        cyclegan.<run>.train        work queue, bounded bytes, discard new
//	CYCLEGAN_CHECKPOINTS_<run>  cyclegan.<run>.checkpoints  limits retention
//	CYCLEGAN_EVAL_<run>         cyclegan.<run>.eval         limits retention
//
// Checkpoints live in the Object Store bucket cyclegan_checkpoints as
// <run>/step-<n>.safetensors, and each run's state (running, finished,
// failed; latest checkpoint, step, epoch) is a JSON value under the key
// <run> of the KV bucket cyclegan_runs.
//
// Delivery is at least once, made effectively once in two places. A
// Publisher sends every message with a Nats-Msg-Id, so the stream drops a
// repeated publish within its duplicate window. A Consumer acks only after
// its handler returned, and remembers the ids it handled, so a redelivery
// caused by a lost ack does not reach the handler twice within one process.
// When a bounded stream is full, Publish waits and retries: the producer
// slows down to the pace of its consumers and nothing is dropped.
//
// # How a stage uses the package
//
// A stage binary describes itself to StageMain. StageMain parses the settings
// (flags over CYCLEGAN_* variables over defaults) and handles --help and
// "probe [URL]". It then serves /metrics, /healthz and /readyz, connects,
// ensures the topology, and builds and runs the stage until the run ends or a
// signal stops it:
//
//	func main() {
//		os.Exit(pipeline.StageMain(context.Background(), pipeline.Program{
//			Name: "augmenter", Summary: "...", MetricsAddr: "127.0.0.1:9102",
//			Declare: func(f *pipeline.FlagSet, _ string) (pipeline.BuildFunc, error) {
//				cfg := augmenter.DefaultConfig()
//				cfg.Register(f)
//				return func(d pipeline.StageDeps) (pipeline.Stage, error) { return augmenter.New(cfg, ...) }, nil
//			},
//		}, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
//	}
//
// The stage's Run consumes and publishes until its context ends:
//
//	out, err := pipeline.NewPublisher(ctx, js, pipeline.PublisherOptions{
//		Stream: topo.TrainStream, Subject: topo.TrainSubject, Run: cfg.Run, Stage: "augmenter", Metrics: metrics, Logger: log})
//	in, err := pipeline.NewConsumer(ctx, js, pipeline.ConsumerOptions{
//		Stream: topo.RawStream, Durable: pipeline.ConsumerAugmenter, Run: cfg.Run, Stage: "augmenter",
//		Metrics: metrics, Logger: log, DrainTimeout: cfg.DrainTimeout})
//	err = in.Run(ctx, func(ctx context.Context, m *pipeline.Message) error {
//		pair, err := decode(m.Data)
//		if err != nil {
//			return fmt.Errorf("decode raw pair: %w: %v", pipeline.ErrPoison, err)
//		}
//		_, err = out.Publish(ctx, m.ID, augment(pair))
//		return err
//	})
//
// The one-process run (cyclegan train) starts an EmbeddedServer and runs
// each stage's Run in a Group. Every stage passes the same Prometheus
// registry to NewMetrics: repeated calls share the collectors, whose stage
// label distinguishes the stages, and one HTTPServer serves the registry.
//
// Nothing in the package keeps global state: the registry, the logger, the
// clock and the environment lookup are passed in.
package pipeline
