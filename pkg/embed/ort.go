package embed

import (
	"errors"
	"fmt"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ownyou/home/pkg/models"
)

// EnvORTLib names the ONNX Runtime shared library to load.
const EnvORTLib = models.EnvORTLib

// ErrRuntime reports that the ONNX Runtime library could not be loaded.
var ErrRuntime = errors.New("onnx runtime unavailable")

var (
	ortMu   sync.Mutex
	ortLib  string
	ortRefs int
)

// initRuntime loads the ORT shared library once per process. ORT allows one
// environment per process, so every Session shares it; the library path of
// the first caller wins and a different later path is an error.
func initRuntime(lib string) error {
	ortMu.Lock()
	defer ortMu.Unlock()
	if ortRefs > 0 {
		if lib != ortLib {
			return fmt.Errorf("%w: already initialized with %s, not %s", ErrRuntime, ortLib, lib)
		}
		ortRefs++
		return nil
	}
	if _, err := os.Stat(lib); err != nil {
		return fmt.Errorf("%w: %v (run `make models` or set %s)", ErrRuntime, err, EnvORTLib)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("%w: load %s: %v", ErrRuntime, lib, err)
	}
	ortLib, ortRefs = lib, 1
	return nil
}

func releaseRuntime() {
	ortMu.Lock()
	defer ortMu.Unlock()
	ortRefs--
	if ortRefs == 0 {
		_ = ort.DestroyEnvironment()
		ortLib = ""
	}
}

// SessionConfig configures an ONNX Runtime session.
type SessionConfig struct {
	// Library is the path of libonnxruntime.so (OWNYOU_ORT_LIB).
	Library string
	// IntraOpThreads and InterOpThreads size ORT's thread pools; 0 means ORT's default.
	IntraOpThreads, InterOpThreads int
	// NoArena turns off ORT's CPU memory arena (on by default, as in ORT).
	NoArena bool
	// NoSpin keeps intra-op threads from spinning while they wait for work
	// (ORT spins by default): slower lone runs, but no core held between them.
	NoSpin bool
	// MemPattern turns on ORT's memory-pattern planning; off by default:
	// with variable batch shapes it costs ~70 MB resident for no speed gain.
	MemPattern bool
	// Options are extra ORT session config entries (e.g. "session.disable_prepacking").
	Options map[string]string
}

// GoProcs is the GOMAXPROCS a process that mostly runs the encoder should
// use: the CPUs (as runtime.GOMAXPROCS(0) counts them) that intraOpThreads
// leave free, at least one; intraOpThreads 0 (ORT's default, one per core)
// leaves none. More Go threads than that spin in Go's scheduler on the cores
// the intra-op threads need: on 2 cores, 1 instead of 2 gives 15–20% more
// embeddings/s at batch 1–8 and ~5% at batch 32.
func GoProcs(cpus, intraOpThreads int) int {
	if intraOpThreads <= 0 {
		intraOpThreads = cpus
	}
	return max(1, cpus-intraOpThreads)
}

// Session runs a BERT-shaped encoder: int64 input_ids / attention_mask /
// (optional) token_type_ids [batch, seq] → float32 last_hidden_state
// [batch, seq, dim]. Run is safe for concurrent use (ORT sessions are), but
// one caller at a time gets the best throughput from the intra-op pool.
type Session struct {
	sess     *ort.DynamicAdvancedSession
	inputs   []string
	useTypes bool
	dim      int
	closed   sync.Once
}

// ErrModel reports a model file that cannot serve as a sentence encoder.
var ErrModel = errors.New("unusable model")

// NewSession loads ONNX model bytes into a session.
func NewSession(cfg SessionConfig, model []byte) (*Session, error) {
	return openSession(cfg, model, "")
}

// NewSessionFile loads the ONNX model at path into a session; ORT reads the
// file itself, so the weights are not also held on the Go heap.
func NewSessionFile(cfg SessionConfig, path string) (*Session, error) {
	return openSession(cfg, nil, path)
}

func openSession(cfg SessionConfig, model []byte, path string) (*Session, error) {
	if err := initRuntime(cfg.Library); err != nil {
		return nil, err
	}
	s, err := newSession(cfg, model, path)
	if err != nil {
		releaseRuntime()
		return nil, err
	}
	trimHeap()
	return s, nil
}

func newSession(cfg SessionConfig, model []byte, path string) (*Session, error) {
	var ins, outs []ort.InputOutputInfo
	var err error
	if path != "" {
		ins, outs, err = ort.GetInputOutputInfo(path)
	} else {
		ins, outs, err = ort.GetInputOutputInfoWithONNXData(model)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read model: %v", ErrModel, err)
	}
	have := map[string]bool{}
	for _, in := range ins {
		have[in.Name] = true
	}
	if !have["input_ids"] || !have["attention_mask"] {
		return nil, fmt.Errorf("%w: inputs %v lack input_ids/attention_mask", ErrModel, ins)
	}
	inputs := []string{"input_ids", "attention_mask"}
	if have["token_type_ids"] {
		inputs = append(inputs, "token_type_ids")
	}
	if len(ins) != len(inputs) {
		return nil, fmt.Errorf("%w: unexpected inputs %v", ErrModel, ins)
	}
	dim := 0
	for _, o := range outs {
		if o.Name == "last_hidden_state" {
			if len(o.Dimensions) != 3 || o.Dimensions[2] <= 0 {
				return nil, fmt.Errorf("%w: last_hidden_state has shape %v, want [batch, seq, dim]", ErrModel, o.Dimensions)
			}
			dim = int(o.Dimensions[2])
		}
	}
	if dim == 0 {
		return nil, fmt.Errorf("%w: no last_hidden_state output (outputs %v)", ErrModel, outs)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer opts.Destroy()
	if cfg.IntraOpThreads > 0 {
		if err := opts.SetIntraOpNumThreads(cfg.IntraOpThreads); err != nil {
			return nil, fmt.Errorf("intra-op threads: %w", err)
		}
	}
	if cfg.InterOpThreads > 0 {
		if err := opts.SetInterOpNumThreads(cfg.InterOpThreads); err != nil {
			return nil, fmt.Errorf("inter-op threads: %w", err)
		}
	}
	if err := opts.SetCpuMemArena(!cfg.NoArena); err != nil {
		return nil, fmt.Errorf("memory arena: %w", err)
	}
	if err := opts.SetMemPattern(cfg.MemPattern); err != nil {
		return nil, fmt.Errorf("memory pattern: %w", err)
	}
	if cfg.NoSpin {
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("intra-op spinning: %w", err)
		}
	}
	for k, v := range cfg.Options {
		if err := opts.AddSessionConfigEntry(k, v); err != nil {
			return nil, fmt.Errorf("session option %s: %w", k, err)
		}
	}
	var sess *ort.DynamicAdvancedSession
	if path != "" {
		sess, err = ort.NewDynamicAdvancedSession(path, inputs, []string{"last_hidden_state"}, opts)
	} else {
		sess, err = ort.NewDynamicAdvancedSessionWithONNXData(model, inputs, []string{"last_hidden_state"}, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: create session: %v", ErrModel, err)
	}
	return &Session{sess: sess, inputs: inputs, useTypes: len(inputs) == 3, dim: dim}, nil
}

// Dim returns the hidden size of last_hidden_state.
func (s *Session) Dim() int { return s.dim }

// Close releases the session (and the ORT environment with the last session).
func (s *Session) Close() error {
	var err error
	s.closed.Do(func() {
		err = s.sess.Destroy()
		releaseRuntime()
	})
	return err
}

// Batch is a padded batch: row-major [Rows, Seq] ids, mask and type ids.
type Batch struct {
	Rows, Seq          int
	IDs, Mask, TypeIDs []int64
}

// PadBatch right-pads encodings with padID to the longest one.
func PadBatch(encs []Encoding, padID int64) Batch {
	seq := 0
	for _, e := range encs {
		seq = max(seq, len(e.IDs))
	}
	n := len(encs) * seq
	b := Batch{Rows: len(encs), Seq: seq, IDs: make([]int64, n), Mask: make([]int64, n), TypeIDs: make([]int64, n)}
	for i, e := range encs {
		row := b.IDs[i*seq : (i+1)*seq]
		copy(row, e.IDs)
		for j := len(e.IDs); j < seq; j++ {
			row[j] = padID
		}
		copy(b.Mask[i*seq:], e.AttentionMask)
		copy(b.TypeIDs[i*seq:], e.TypeIDs)
	}
	return b
}

// Hidden runs the encoder on b and returns last_hidden_state, row-major [Rows, Seq, Dim].
func (s *Session) Hidden(b Batch) ([]float32, error) {
	if b.Rows == 0 || b.Seq == 0 {
		return nil, nil
	}
	shape := ort.NewShape(int64(b.Rows), int64(b.Seq))
	var vals []ort.Value
	defer func() {
		for _, v := range vals {
			_ = v.Destroy()
		}
	}()
	for _, data := range [][]int64{b.IDs, b.Mask, b.TypeIDs}[:len(s.inputs)] {
		t, err := ort.NewTensor(shape, data)
		if err != nil {
			return nil, fmt.Errorf("input tensor: %w", err)
		}
		vals = append(vals, t)
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(b.Rows), int64(b.Seq), int64(s.dim)))
	if err != nil {
		return nil, fmt.Errorf("output tensor: %w", err)
	}
	defer out.Destroy()
	if err := s.sess.Run(vals, []ort.Value{out}); err != nil {
		return nil, fmt.Errorf("run encoder: %w", err)
	}
	return out.GetData(), nil
}

// Embed runs the encoder on b and returns one mean-pooled, L2-normalized vector per row.
func (s *Session) Embed(b Batch) ([][]float32, error) {
	h, err := s.Hidden(b)
	if err != nil {
		return nil, err
	}
	return MeanPoolNormalize(h, b.Mask, b.Rows, b.Seq, s.dim), nil
}
