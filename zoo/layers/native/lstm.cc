// The LSTM layer's training pass, forward and backward, as two TensorFlow CPU kernels.
//
// zoo compiles this file on first use against the installed TensorFlow's headers
// (zoo/layers/native/__init__.py) and falls back to TensorFlow's own ops, which
// compute the same values, when it cannot.
//
// Why: a time step of the TensorFlow loop is ~100 small ops, each dispatched by the
// executor; for the chapter's LSTM (32 x 256 units) that overhead outweighs the step's
// arithmetic. Here a step is one matrix product per thread and its gates.
//
// The units are cut into slices, one per thread: slice j is units [u0, u0 + S) of
// every gate. The work is a sequence of phases, each a task per slice, and a phase
// starts when the one before has finished (RunPhases): forward, the slices' columns
// of W_x and W_h packed once, then per step t the slice's x_t W_x + h_{t-1} W_h (one
// AVX-512 product over the packed panels, PackedProduct), its gates, c_t and h_t, h_t
// going to a double buffer that the next step reads whole. Backward, per step the
// slice's dh_t = dG_{t+1} W_hᵀ and share of dx_{t+1} (which need dG_{t+1} of every
// unit), then its gate gradients dG_t (which need only its own units); then each
// slice's columns of the weight gradients, Σ over batch and time as one product.
// Any thread takes any task, so a helper thread that starts late costs only its share.
// Results differ from TensorFlow's loop by float rounding only (sums in another order).
//
// Shapes (B batch, T time, F features, U units, gates in the order i, f, c~, o):
//   ZooLstm(inputs [B,T,F], kernel [F,4U], bias [4U] or [0], recurrent_kernel [U,4U],
//           h0 [B,U], c0 [B,U], recurrent_mask [B,U] or [0], keep [B,T] or [0])
//     -> h_states [B,T,U], c_states [B,T,U], activations [B,T,4U] (i, f, c~, o),
//        tanh_cells [B,T,U] (tanh c_t, for the backward pass), h_final, c_final
//   h_states / c_states are the states carried after each step (a step whose keep is
//   0 carries the previous ones); the layer's output is h_states * keep. recurrent_mask
//   multiplies h_{t-1} where it enters the recurrent product.
//   ZooLstmGrad(inputs, kernel, recurrent_kernel, recurrent_mask, keep, h0, c0,
//               h_states, c_states, activations, tanh_cells, d_outputs [B,T,U], d_h_final,
//               d_c_final)
//     -> d_inputs, d_kernel, d_bias [4U], d_recurrent_kernel, d_h0, d_c0

#include <algorithm>
#include <cstring>
#include <atomic>
#include <thread>
#include <memory>
#include <string>
#include <utility>

#include <Eigen/Core>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/platform/blocking_counter.h"
#include "tensorflow/core/lib/core/threadpool.h"

namespace zoo {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<>;
using ConstMatrixMap = Eigen::Map<const RowMatrix, 0, Strided>;
using MatrixMap = Eigen::Map<RowMatrix, 0, Strided>;
using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
using Array = Eigen::Map<Eigen::ArrayXf>;

// Waits until `counter` reaches `target`: spins briefly, then yields the core, so that a
// partner that lost its core (a shared machine, TensorFlow's own spinning threads)
// gets it back.
void WaitFor(const std::atomic<int64_t>& counter, int64_t target) {
  for (int spins = 0; counter.load(std::memory_order_acquire) < target; ++spins) {
    if (spins > 256) std::this_thread::yield();
  }
}

// Runs task(phase, i) for every i in [0, tasks) of every phase, phase after phase: no
// task of a phase starts before every task of the phases before it has finished. Any
// thread takes the next task; the calling thread works from the start and helpers
// (TensorFlow's intra-op threads) join when they get a core, so a helper that starts
// late, or never, costs the time of its share and nothing more (a fixed split would
// have every step wait for it).
template <typename Task>
void RunPhases(OpKernelContext* context, int threads, int64_t phases, int64_t tasks,
               const Task& task) {
  struct Shared {
    std::atomic<int64_t> next{0}, done{0};
  };
  const auto shared = std::make_shared<Shared>();
  const int64_t total = phases * tasks;
  // A helper that arrives after the last task only touches `shared`, which it owns.
  const Task* work = &task;
  auto worker = [shared, total, tasks, work] {
    for (int64_t k = shared->next.fetch_add(1); k < total; k = shared->next.fetch_add(1)) {
      const int64_t phase = k / tasks;
      WaitFor(shared->done, phase * tasks);
      (*work)(phase, k % tasks);
      shared->done.fetch_add(1, std::memory_order_acq_rel);
    }
  };
  auto* pool = context->device()->tensorflow_cpu_worker_threads()->workers;
  for (int j = 1; j < threads; ++j) pool->Schedule(worker);
  worker();
  WaitFor(shared->done, total);
}

// How many threads share the units: TensorFlow's intra-op threads, at most one per 32
// units (below that a slice's product is too small to pay for the wait between steps).
int ThreadsFor(OpKernelContext* context, int64_t units) {
  const int available = context->device()->tensorflow_cpu_worker_threads()->num_threads;
  const int64_t by_size = std::max<int64_t>(1, units / 32);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(available, by_size)));
}

// Thread j's units: [first, first + size), in multiples of 16 floats where possible.
void SliceOf(int64_t units, int threads, int j, int64_t* first, int64_t* size) {
  const int64_t block = units >= 16 * threads ? 16 : 1;
  const int64_t blocks = (units + block - 1) / block;
  const int64_t begin = blocks * j / threads * block;
  const int64_t end = std::min(units, blocks * (j + 1) / threads * block);
  *first = begin;
  *size = std::max<int64_t>(0, end - begin);
}


// C [M x N] (+)= A [M x K] x B for the per-step products, where B (a slice of a
// weight) is the same at every step: it is packed once into panels of 32 columns, each
// [K x 32] and contiguous, and an AVX-512 block of 8 rows x 32 columns runs over them
// (Eigen's product packs B again at every call: ~15 % slower at these sizes). Without
// AVX-512 the product is Eigen's.
constexpr int64_t kPanel = 32;
inline int64_t PanelsOf(int64_t n) { return (n + kPanel - 1) / kPanel; }

// Column c of B is column c of `b` (rows `ldb` apart), or, with `transposed`, row c of
// `b`: B = bᵀ. Padded with zeros to whole panels.
void PackPanels(const float* b, int64_t ldb, int64_t K, int64_t N, bool transposed, float* packed) {
  for (int64_t p = 0; p < PanelsOf(N); ++p) {
    const int64_t c0 = p * kPanel, width = std::min<int64_t>(kPanel, N - c0);
    float* panel = packed + p * K * kPanel;
    if (width < kPanel) std::fill(panel, panel + K * kPanel, 0.0f);
    if (!transposed) {
      for (int64_t k = 0; k < K; ++k) {
        std::copy(b + k * ldb + c0, b + k * ldb + c0 + width, panel + k * kPanel);
      }
    } else {
      for (int64_t c = 0; c < width; ++c) {
        const float* source = b + (c0 + c) * ldb;
        for (int64_t k = 0; k < K; ++k) panel[k * kPanel + c] = source[k];
      }
    }
  }
}

// Thread j's columns of every gate of a gate-major [K, 4U] matrix, in blocked order
// (gate g's units at g S + [0, S)), packed like PackPanels: one pass, no blocked copy.
void PackGateColumns(const float* matrix, int64_t K, int64_t units, int64_t u0, int64_t S,
                     float* packed) {
  const int64_t N = 4 * S;
  for (int64_t p = 0; p < PanelsOf(N); ++p) {
    const int64_t c0 = p * kPanel, width = std::min<int64_t>(kPanel, N - c0);
    float* panel = packed + p * K * kPanel;
    if (width < kPanel) std::fill(panel, panel + K * kPanel, 0.0f);
    // The panel's columns in runs that are contiguous in `matrix` (a run ends at a gate).
    for (int64_t c = c0; c < c0 + width;) {
      const int64_t gate = c / S, offset = c % S;
      const int64_t run = std::min(S - offset, c0 + width - c);
      const float* source = matrix + gate * units + u0 + offset;
      for (int64_t k = 0; k < K; ++k) {
        std::copy(source + k * 4 * units, source + k * 4 * units + run, panel + k * kPanel + c - c0);
      }
      c += run;
    }
  }
}

#ifdef __AVX512F__
template <int R>
inline void PanelBlock(const float* a, int64_t a_row, int64_t a_col, int64_t K, const float* panel, float* c,
                       int64_t ldc, __mmask16 m0, __mmask16 m1, bool accumulate) {
  __m512 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) {
    acc0[r] = accumulate ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
    acc1[r] = accumulate ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_loadu_ps(panel + k * kPanel);
    const __m512 b1 = _mm512_loadu_ps(panel + k * kPanel + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * a_row + k * a_col]);
      acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
  }
}

template <int R>
void PanelRows(const float* a, int64_t a_row, int64_t a_col, int64_t K, const float* panel, float* c, int64_t ldc,
               __mmask16 m0, __mmask16 m1, bool accumulate, int64_t rows) {
  if constexpr (R > 0) {
    if (rows == R) {
      PanelBlock<R>(a, a_row, a_col, K, panel, c, ldc, m0, m1, accumulate);
    } else {
      PanelRows<R - 1>(a, a_row, a_col, K, panel, c, ldc, m0, m1, accumulate, rows);
    }
  }
}
#endif

// A's entry (r, k) is a[r * a_row + k * a_col]: a row-major matrix, or (a_row = 1) a
// transposed one.
void PackedProduct(const float* a, int64_t a_row, int64_t a_col, int64_t M, int64_t K, const float* packed,
                   int64_t N, float* c, int64_t ldc, bool accumulate) {
#ifdef __AVX512F__
  // Rows of A in groups that stay in the L2 cache while every panel of B passes by
  // (for the weight gradients A is [h_in, x]ᵀ, larger than L2).
  constexpr int64_t kRowGroup = 128;
  for (int64_t g0 = 0; g0 < M; g0 += kRowGroup) {
    const int64_t group_end = std::min(M, g0 + kRowGroup);
    for (int64_t p = 0; p < PanelsOf(N); ++p) {
      const int64_t c0 = p * kPanel, width = std::min<int64_t>(kPanel, N - c0);
      const __mmask16 m0 = width >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << width) - 1);
      const __mmask16 m1 = width >= 32   ? 0xFFFF
                           : width > 16 ? static_cast<__mmask16>((1u << (width - 16)) - 1)
                                        : 0;
      const float* panel = packed + p * K * kPanel;
      for (int64_t r = g0; r < group_end; r += 8) {
        PanelRows<8>(a + r * a_row, a_row, a_col, K, panel, c + r * ldc + c0, ldc, m0, m1,
                     accumulate, std::min<int64_t>(8, group_end - r));
      }
    }
  }
#else
  for (int64_t p = 0; p < PanelsOf(N); ++p) {
    const int64_t c0 = p * kPanel, width = std::min<int64_t>(kPanel, N - c0);
    MatrixMap target(c + c0, M, width, Strided(ldc));
    const auto product = Eigen::Map<const RowMatrix, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>(
                             a, M, K, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(a_row, a_col)) *
                         ConstMatrixMap(packed + p * K * kPanel, K, width, Strided(kPanel));
    if (accumulate) {
      target.noalias() += product;
    } else {
      target.noalias() = product;
    }
  }
#endif
}

bool IsEmpty(const Tensor& tensor) { return tensor.NumElements() == 0; }

// The kernels keep gate columns thread by thread ("blocked"): thread j's units of gate
// g are the columns 4 u0 + g S + [0, S) of a [rows, 4U] matrix, so that each thread's
// columns are one contiguous block for its products. Tensors use the gate-major layout
// g U + u of Keras' weights.

// Thread j's columns of every gate: gate-major `matrix` → blocked `blocked`.
void ToBlocked(const float* matrix, int64_t rows, int64_t units, int64_t u0, int64_t S,
               float* blocked) {
  const Strided stride(4 * units);
  for (int gate = 0; gate < 4; ++gate) {
    MatrixMap(blocked + 4 * u0 + gate * S, rows, S, stride) =
        ConstMatrixMap(matrix + gate * units + u0, rows, S, stride);
  }
}

// The reverse: blocked `blocked` → thread j's columns of the gate-major `matrix`.
void FromBlocked(const float* blocked, int64_t rows, int64_t units, int64_t u0, int64_t S,
                 float* matrix) {
  const Strided stride(4 * units);
  for (int gate = 0; gate < 4; ++gate) {
    MatrixMap(matrix + gate * units + u0, rows, S, stride) =
        ConstMatrixMap(blocked + 4 * u0 + gate * S, rows, S, stride);
  }
}

// The widest slice: scratch is allocated per slice at this width.
int64_t WidestSlice(int64_t units, int slices) {
  int64_t widest = 0;
  for (int j = 0; j < slices; ++j) {
    int64_t u0, S;
    SliceOf(units, slices, j, &u0, &S);
    widest = std::max(widest, S);
  }
  return widest;
}

// The optional masks: recurrent_mask [B,U] and keep [B,T], each empty when absent.
absl::Status CheckMasks(const char* op, const Tensor& recurrent_mask, const Tensor& keep,
                              int64_t batch, int64_t steps, int64_t units) {
  if (!IsEmpty(recurrent_mask) && recurrent_mask.shape() != TensorShape({batch, units})) {
    return absl::InvalidArgumentError(std::string(op) + ": recurrent_mask must be [B,U] or empty");
  }
  if (!IsEmpty(keep) && keep.shape() != TensorShape({batch, steps})) {
    return absl::InvalidArgumentError(std::string(op) + ": keep must be [B,T] or empty");
  }
  return absl::OkStatus();
}

// Rows [first, first + count) of `total` for thread j of `threads`.
void RowsOf(int64_t total, int threads, int j, int64_t* first, int64_t* count) {
  *first = total * j / threads;
  *count = total * (j + 1) / threads - *first;
}

class LstmOp : public OpKernel {
 public:
  explicit LstmOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& inputs = context->input(0);
    const Tensor& kernel = context->input(1);
    const Tensor& bias = context->input(2);
    const Tensor& recurrent_kernel = context->input(3);
    const Tensor& h0 = context->input(4);
    const Tensor& c0 = context->input(5);
    const Tensor& recurrent_mask = context->input(6);
    const Tensor& keep = context->input(7);
    OP_REQUIRES(context, inputs.dims() == 3 && kernel.dims() == 2 && recurrent_kernel.dims() == 2,
                absl::InvalidArgumentError("ZooLstm: inputs must be [B,T,F], kernels [F,4U] and [U,4U]"));
    const int64_t batch = inputs.dim_size(0), steps = inputs.dim_size(1);
    const int64_t features = inputs.dim_size(2), units = recurrent_kernel.dim_size(0);
    const int64_t G = 4 * units;
    const TensorShape state_shape({batch, units});
    OP_REQUIRES(context,
                kernel.shape() == TensorShape({features, G}) && recurrent_kernel.dim_size(1) == G &&
                    (IsEmpty(bias) || bias.shape() == TensorShape({G})) &&
                    h0.shape() == state_shape && c0.shape() == state_shape,
                absl::InvalidArgumentError("ZooLstm: kernel must be [F,4U], bias [4U], h0 and c0 [B,U]"));
    OP_REQUIRES_OK(context, CheckMasks("ZooLstm", recurrent_mask, keep, batch, steps, units));

    Tensor *h_states, *c_states, *activations, *tanh_cells, *h_final, *c_final;
    OP_REQUIRES_OK(context, context->allocate_output(0, {batch, steps, units}, &h_states));
    OP_REQUIRES_OK(context, context->allocate_output(1, {batch, steps, units}, &c_states));
    OP_REQUIRES_OK(context, context->allocate_output(2, {batch, steps, G}, &activations));
    OP_REQUIRES_OK(context, context->allocate_output(3, {batch, steps, units}, &tanh_cells));
    OP_REQUIRES_OK(context, context->allocate_output(4, state_shape, &h_final));
    OP_REQUIRES_OK(context, context->allocate_output(5, state_shape, &c_final));

    const float* x = inputs.flat<float>().data();
    const float* wx = kernel.flat<float>().data();
    const float* b_all = IsEmpty(bias) ? nullptr : bias.flat<float>().data();
    const float* wh = recurrent_kernel.flat<float>().data();
    const float* rmask = IsEmpty(recurrent_mask) ? nullptr : recurrent_mask.flat<float>().data();
    const float* keeps = IsEmpty(keep) ? nullptr : keep.flat<float>().data();
    float* hs = h_states->flat<float>().data();
    float* cs = c_states->flat<float>().data();
    float* tcs = tanh_cells->flat<float>().data();
    float* acts = activations->flat<float>().data();
    // The units are cut into slices, one task per slice and step.
    const int threads = ThreadsFor(context, units);
    const int slices = threads;
    const int64_t max_slice = WidestSlice(units, slices);
    // Scratch from TensorFlow's allocator, which reuses its memory from step to step.
    const int64_t panel_floats = PanelsOf(4 * max_slice) * kPanel * units;
    const int64_t wx_panel_floats = PanelsOf(4 * max_slice) * kPanel * features;
    Tensor wh_packed, wx_packed, gates, h_in;
    OP_REQUIRES_OK(context, context->allocate_temp(tensorflow::DT_FLOAT, {slices, wx_panel_floats}, &wx_packed));
    OP_REQUIRES_OK(context, context->allocate_temp(tensorflow::DT_FLOAT, {slices, panel_floats}, &wh_packed));
    OP_REQUIRES_OK(context, context->allocate_temp(tensorflow::DT_FLOAT, {slices, batch * 4 * max_slice}, &gates));
    OP_REQUIRES_OK(context, context->allocate_temp(tensorflow::DT_FLOAT, {2, batch, units}, &h_in));
    float* h_buffers = h_in.flat<float>().data();  // h_{t-1} ⊙ mask, double-buffered
    const float* h_initial = h0.flat<float>().data();
    const float* c_initial = c0.flat<float>().data();
    for (int64_t k = 0; k < batch * units; ++k) {
      h_buffers[k] = rmask ? h_initial[k] * rmask[k] : h_initial[k];
    }

    // Phase 0: a slice's columns of W_x and W_h packed for the per-step products.
    // Phase 1 + t: step t, x_t W_x + h_{t-1} W_h for the slice's columns (the bias is
    // added with the gates).
    RunPhases(context, threads, 1 + steps, slices, [&](int64_t phase, int64_t j) {
      int64_t u0, S;
      SliceOf(units, slices, static_cast<int>(j), &u0, &S);
      if (S == 0) return;
      float* wx_slice = wx_packed.flat<float>().data() + j * wx_panel_floats;
      float* w_slice = wh_packed.flat<float>().data() + j * panel_floats;
      if (phase == 0) {
        PackGateColumns(wx, features, units, u0, S, wx_slice);
        PackGateColumns(wh, units, units, u0, S, w_slice);
        return;
      }
      const int64_t t = phase - 1;
      const float* h_read = h_buffers + (t % 2) * batch * units;
      float* h_write = h_buffers + ((t + 1) % 2) * batch * units;
      float* pre = gates.flat<float>().data() + j * batch * 4 * max_slice;  // [B, 4S]
      PackedProduct(x + t * features, steps * features, 1, batch, features, wx_slice, 4 * S, pre,
                    4 * S, false);
      PackedProduct(h_read, units, 1, batch, units, w_slice, 4 * S, pre, 4 * S, true);
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t row = b * steps + t;
        const float* g_row = pre + b * 4 * S;
        float* a_row = acts + row * G + u0;
        Array i(a_row, S), f(a_row + units, S), g(a_row + 2 * units, S), o(a_row + 3 * units, S);
        if (b_all) {
          i = (ConstArray(g_row, S) + ConstArray(b_all + u0, S)).logistic();
          f = (ConstArray(g_row + S, S) + ConstArray(b_all + units + u0, S)).logistic();
          g = (ConstArray(g_row + 2 * S, S) + ConstArray(b_all + 2 * units + u0, S)).tanh();
          o = (ConstArray(g_row + 3 * S, S) + ConstArray(b_all + 3 * units + u0, S)).logistic();
        } else {
          i = ConstArray(g_row, S).logistic();
          f = ConstArray(g_row + S, S).logistic();
          g = ConstArray(g_row + 2 * S, S).tanh();
          o = ConstArray(g_row + 3 * S, S).logistic();
        }
        // The states carried into step t: the previous step's, or the initial ones.
        ConstArray c_prev(t > 0 ? cs + (row - 1) * units + u0 : c_initial + b * units + u0, S);
        ConstArray h_prev(t > 0 ? hs + (row - 1) * units + u0 : h_initial + b * units + u0, S);
        Array c_row(cs + row * units + u0, S), h_row(hs + row * units + u0, S);
        Array tanh_c(tcs + row * units + u0, S);
        if (keeps == nullptr || keeps[row] != 0.0f) {
          c_row = f * c_prev + i * g;
          tanh_c = c_row.tanh();
          h_row = o * tanh_c;
        } else {  // a padded step carries the states
          c_row = c_prev;
          h_row = h_prev;
          tanh_c.setZero();  // unused: the backward pass skips a carried step
        }
        Array h_next(h_write + b * units + u0, S);
        if (rmask) {
          h_next = h_row * ConstArray(rmask + b * units + u0, S);
        } else {
          h_next = h_row;
        }
      }
    });
    float* h_last = h_final->flat<float>().data();
    float* c_last = c_final->flat<float>().data();
    for (int64_t b = 0; b < batch; ++b) {
      const bool any = steps > 0;
      std::copy_n(any ? hs + (b * steps + steps - 1) * units : h_initial + b * units, units,
                  h_last + b * units);
      std::copy_n(any ? cs + (b * steps + steps - 1) * units : c_initial + b * units, units,
                  c_last + b * units);
    }
  }
};

class LstmGradOp : public OpKernel {
 public:
  explicit LstmGradOp(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& inputs = context->input(0);
    const Tensor& kernel = context->input(1);
    const Tensor& recurrent_kernel = context->input(2);
    const Tensor& recurrent_mask = context->input(3);
    const Tensor& keep = context->input(4);
    const Tensor& h0 = context->input(5);
    const Tensor& c0 = context->input(6);
    const Tensor& h_states = context->input(7);
    const Tensor& c_states = context->input(8);
    const Tensor& activations = context->input(9);
    const Tensor& tanh_cells = context->input(10);
    const Tensor& d_outputs = context->input(11);
    const Tensor& d_h_final = context->input(12);
    const Tensor& d_c_final = context->input(13);
    OP_REQUIRES(context, inputs.dims() == 3 && kernel.dims() == 2 && recurrent_kernel.dims() == 2,
                absl::InvalidArgumentError("ZooLstmGrad: inputs must be [B,T,F], kernels [F,4U] and [U,4U]"));
    const int64_t batch = inputs.dim_size(0), steps = inputs.dim_size(1);
    const int64_t features = inputs.dim_size(2), units = recurrent_kernel.dim_size(0);
    const int64_t G = 4 * units, rows = batch * steps;
    const TensorShape state_shape({batch, units}), sequence_shape({batch, steps, units});
    OP_REQUIRES(context,
                kernel.shape() == TensorShape({features, G}) && recurrent_kernel.dim_size(1) == G &&
                    h0.shape() == state_shape && c0.shape() == state_shape &&
                    h_states.shape() == sequence_shape && c_states.shape() == sequence_shape &&
                    tanh_cells.shape() == sequence_shape &&
                    activations.shape() == TensorShape({batch, steps, G}) &&
                    d_outputs.shape() == sequence_shape && d_h_final.shape() == state_shape &&
                    d_c_final.shape() == state_shape,
                absl::InvalidArgumentError("ZooLstmGrad: inconsistent shapes"));
    OP_REQUIRES_OK(context, CheckMasks("ZooLstmGrad", recurrent_mask, keep, batch, steps, units));

    Tensor *d_inputs, *d_kernel, *d_bias, *d_recurrent_kernel, *d_h0, *d_c0;
    OP_REQUIRES_OK(context, context->allocate_output(0, inputs.shape(), &d_inputs));
    OP_REQUIRES_OK(context, context->allocate_output(1, kernel.shape(), &d_kernel));
    OP_REQUIRES_OK(context, context->allocate_output(2, {G}, &d_bias));
    OP_REQUIRES_OK(context, context->allocate_output(3, recurrent_kernel.shape(), &d_recurrent_kernel));
    OP_REQUIRES_OK(context, context->allocate_output(4, state_shape, &d_h0));
    OP_REQUIRES_OK(context, context->allocate_output(5, state_shape, &d_c0));

    const float* x = inputs.flat<float>().data();
    const float* wx = kernel.flat<float>().data();
    const float* wh = recurrent_kernel.flat<float>().data();
    const float* rmask = IsEmpty(recurrent_mask) ? nullptr : recurrent_mask.flat<float>().data();
    const float* keeps = IsEmpty(keep) ? nullptr : keep.flat<float>().data();
    const float* h_initial = h0.flat<float>().data();
    const float* c_initial = c0.flat<float>().data();
    const float* hs = h_states.flat<float>().data();
    const float* cs = c_states.flat<float>().data();
    const float* tcs = tanh_cells.flat<float>().data();
    const float* acts = activations.flat<float>().data();
    const float* d_out = d_outputs.flat<float>().data();

    // The units are cut into slices, one task per slice and phase.
    const int threads = ThreadsFor(context, units);
    const int slices = threads;
    const int64_t max_slice = WidestSlice(units, slices);
    // Scratch from TensorFlow's allocator, which reuses its memory from step to step:
    // dG of every (batch, time) row, blocked; [h_{t-1} ⊙ mask, x_t] of every row, the
    // left factor of both weight gradients; the kernels blocked; each slice's W_hᵀ
    // packed; the weight gradients blocked; dG packed per slice; W_xᵀ packed; the
    // gradients carried from step to step.
    const int64_t inner = units + features;
    const int64_t panel_floats = PanelsOf(max_slice) * kPanel * G;
    const int64_t dg_panel_floats = PanelsOf(4 * max_slice) * kPanel * rows;
    const int64_t wx_panel_floats = PanelsOf(features) * kPanel * G;
    Tensor dg_t, h_in_t, wxb_t, whb_t, wt_t, dw_t, dgp_t, wxt_t, carried_t;
    for (auto [tensor, shape] : {std::pair<Tensor*, TensorShape>{&dg_t, {rows, G}},
                                 {&h_in_t, {rows, inner}}, {&wxb_t, {features, G}},
                                 {&whb_t, {units, G}}, {&wt_t, {slices, panel_floats}},
                                 {&dw_t, {inner, G}}, {&dgp_t, {slices, dg_panel_floats}},
                                 {&wxt_t, {wx_panel_floats}}, {&carried_t, {3 * batch * units + G}}}) {
      OP_REQUIRES_OK(context, context->allocate_temp(tensorflow::DT_FLOAT, shape, tensor));
    }
    float* dg = dg_t.flat<float>().data();
    float* h_in = h_in_t.flat<float>().data();
    float* wxb = wxb_t.flat<float>().data();
    float* whb = whb_t.flat<float>().data();
    float* dw = dw_t.flat<float>().data();
    float* wx_t = wxt_t.flat<float>().data();
    float* dh = carried_t.flat<float>().data();  // [B, U]: dL/dh_t carried into step t
    float* dc = dh + batch * units;              // [B, U]: dL/dc_t
    float* dh_in = dc + batch * units;           // [B, U]: dG_t W_hᵀ
    float* d_bias_sum = dh_in + batch * units;   // [4U], blocked
    std::copy_n(d_h_final.flat<float>().data(), batch * units, dh);
    std::copy_n(d_c_final.flat<float>().data(), batch * units, dc);
    std::fill_n(d_bias_sum, G, 0.0f);

    // Phases: 0 setup; 1 packing; then one phase per step, from T-1 down to 0 (the
    // gate gradients need only their own units' carried gradients, so a slice's task
    // runs B of step t + 1, dh_t = dG_{t+1} W_hᵀ and its share of dx_{t+1}, then A of
    // step t, dG_t), and B of step 0; then the weight gradients.
    const int64_t loop_start = 2, weights_phase = 3 + steps;

    // A: dG_t for a slice's units.
    auto gate_gradients = [&](int64_t t, int64_t u0, int64_t S) {
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t row = b * steps + t;
        Array dh_row(dh + b * units + u0, S), dc_row(dc + b * units + u0, S);
        float* dg_row = dg + row * G + 4 * u0;
        if (keeps && keeps[row] == 0.0f) {  // the step carried its states: pass through
          Array(dg_row, 4 * S).setZero();
          continue;
        }
        const float* a_row = acts + row * G + u0;
        ConstArray i(a_row, S), f(a_row + units, S), g(a_row + 2 * units, S),
            o(a_row + 3 * units, S);
        ConstArray c_prev(t > 0 ? cs + (row - 1) * units + u0 : c_initial + b * units + u0, S);
        ConstArray tanh_c(tcs + row * units + u0, S);
        dh_row += ConstArray(d_out + row * units + u0, S);
        // dc_t in full, kept in dc_row until it becomes dc_{t-1} = dc_t ⊙ f.
        dc_row += dh_row * o * (1.0f - tanh_c.square());
        Array(dg_row, S) = dc_row * g * i * (1.0f - i);
        Array(dg_row + S, S) = dc_row * c_prev * f * (1.0f - f);
        Array(dg_row + 2 * S, S) = dc_row * i * (1.0f - g.square());
        Array(dg_row + 3 * S, S) = dh_row * tanh_c * o * (1.0f - o);
        dc_row *= f;
        Array(d_bias_sum + 4 * u0, 4 * S) += ConstArray(dg_row, 4 * S);
      }
    };
    // B: dh_{t-1} for a slice's units, from dG_t of every unit.
    auto state_gradients = [&](int64_t t, int64_t u0, int64_t S, const float* w_slice_t) {
      float* slice_in = dh_in + u0;
      PackedProduct(dg + t * G, steps * G, 1, batch, G, w_slice_t, S, slice_in, units, false);
      for (int64_t b = 0; b < batch; ++b) {
        if (keeps && keeps[b * steps + t] == 0.0f) continue;  // dh carries through
        Array dh_row(dh + b * units + u0, S);
        if (rmask) {
          dh_row = Array(slice_in + b * units, S) * ConstArray(rmask + b * units + u0, S);
        } else {
          dh_row = Array(slice_in + b * units, S);
        }
      }
    };

    // dx_t = dG_t W_xᵀ for slice j's panels of 32 features, once dG_t is complete.
    auto input_gradients = [&](int64_t t, int64_t j) {
      for (int64_t p = j; p < PanelsOf(features); p += slices) {
        const int64_t width = std::min<int64_t>(kPanel, features - p * kPanel);
        PackedProduct(dg + t * G, steps * G, 1, batch, G, wx_t + p * G * kPanel, width,
                      d_inputs->flat<float>().data() + t * features + p * kPanel,
                      steps * features, false);
      }
    };

    RunPhases(context, threads, weights_phase + 1, slices, [&](int64_t phase, int64_t j) {
      int64_t u0, S;
      SliceOf(units, slices, static_cast<int>(j), &u0, &S);
      int64_t r0, R;
      RowsOf(rows, slices, static_cast<int>(j), &r0, &R);
      float* w_slice_t = wt_t.flat<float>().data() + j * panel_floats;
      if (phase == 0) {
        for (int64_t row = r0; row < r0 + R; ++row) {  // this task's rows of [h_in, x]
          const int64_t b = row / steps, t = row % steps;
          const float* h_prev = t > 0 ? hs + (row - 1) * units : h_initial + b * units;
          Array target(h_in + row * inner, units);
          if (rmask) {
            target = ConstArray(h_prev, units) * ConstArray(rmask + b * units, units);
          } else {
            target = ConstArray(h_prev, units);
          }
          Array(h_in + row * inner + units, features) = ConstArray(x + row * features, features);
        }
        if (S > 0) {
          ToBlocked(wx, features, units, u0, S, wxb);
          ToBlocked(wh, units, units, u0, S, whb);
        }
        return;
      }
      if (phase == 1) {
        // The slice's units of W_hᵀ [4U, S], rows blocked like dG, packed for the
        // per-step product dh_{t-1}[:, slice] = dG_t W_sliceᵀ; and W_xᵀ for dx.
        if (S > 0) PackPanels(whb + u0 * G, G, G, S, true, w_slice_t);
        if (j == 0) PackPanels(wxb, G, G, features, true, wx_t);
        return;
      }
      if (phase < weights_phase) {
        const int64_t t = steps - 1 - (phase - loop_start);  // A of step t (if t >= 0)
        if (t + 1 < steps) {
          input_gradients(t + 1, j);
          if (S > 0) state_gradients(t + 1, u0, S, w_slice_t);
        }
        if (t >= 0 && S > 0) gate_gradients(t, u0, S);
        return;
      }
      if (phase == weights_phase) {
        if (S == 0) return;
        MatrixMap(d_h0->flat<float>().data() + u0, batch, S, Strided(units)) =
            ConstMatrixMap(dh + u0, batch, S, Strided(units));
        MatrixMap(d_c0->flat<float>().data() + u0, batch, S, Strided(units)) =
            ConstMatrixMap(dc + u0, batch, S, Strided(units));
        // Σ over (batch, time) rows: [W_h; W_x]'s gradient for the slice's columns is
        // [h_in, x]ᵀ dG_slice, one product.
        float* dg_packed = dgp_t.flat<float>().data() + j * dg_panel_floats;
        PackPanels(dg + 4 * u0, G, rows, 4 * S, false, dg_packed);
        PackedProduct(h_in, 1, inner, inner, rows, dg_packed, 4 * S, dw + 4 * u0, G, false);
        FromBlocked(dw, units, units, u0, S, d_recurrent_kernel->flat<float>().data());
        FromBlocked(dw + units * G, features, units, u0, S, d_kernel->flat<float>().data());
        FromBlocked(d_bias_sum, 1, units, u0, S, d_bias->flat<float>().data());
        return;
      }
    });
  }
};

}  // namespace

REGISTER_OP("ZooLstm")
    .Input("inputs: float")
    .Input("kernel: float")
    .Input("bias: float")
    .Input("recurrent_kernel: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("recurrent_mask: float")
    .Input("keep: float")
    .Output("h_states: float")
    .Output("c_states: float")
    .Output("activations: float")
    .Output("tanh_cells: float")
    .Output("h_final: float")
    .Output("c_final: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      using tensorflow::shape_inference::DimensionHandle;
      auto inputs = c->input(0);
      auto recurrent_kernel = c->input(3);
      TF_RETURN_IF_ERROR(c->WithRank(inputs, 3, &inputs));
      TF_RETURN_IF_ERROR(c->WithRank(recurrent_kernel, 2, &recurrent_kernel));
      DimensionHandle batch = c->Dim(inputs, 0), steps = c->Dim(inputs, 1);
      DimensionHandle units = c->Dim(recurrent_kernel, 0), gates = c->Dim(recurrent_kernel, 1);
      c->set_output(0, c->MakeShape({batch, steps, units}));
      c->set_output(1, c->MakeShape({batch, steps, units}));
      c->set_output(2, c->MakeShape({batch, steps, gates}));
      c->set_output(3, c->MakeShape({batch, steps, units}));
      c->set_output(4, c->MakeShape({batch, units}));
      c->set_output(5, c->MakeShape({batch, units}));
      return absl::OkStatus();
    });

REGISTER_OP("ZooLstmGrad")
    .Input("inputs: float")
    .Input("kernel: float")
    .Input("recurrent_kernel: float")
    .Input("recurrent_mask: float")
    .Input("keep: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("h_states: float")
    .Input("c_states: float")
    .Input("activations: float")
    .Input("tanh_cells: float")
    .Input("d_outputs: float")
    .Input("d_h_final: float")
    .Input("d_c_final: float")
    .Output("d_inputs: float")
    .Output("d_kernel: float")
    .Output("d_bias: float")
    .Output("d_recurrent_kernel: float")
    .Output("d_h0: float")
    .Output("d_c0: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(1));
      c->set_output(2, c->Vector(c->Dim(c->input(1), 1)));
      c->set_output(3, c->input(2));
      c->set_output(4, c->input(5));
      c->set_output(5, c->input(6));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("ZooLstm").Device(tensorflow::DEVICE_CPU), LstmOp);
REGISTER_KERNEL_BUILDER(Name("ZooLstmGrad").Device(tensorflow::DEVICE_CPU), LstmGradOp);

}  // namespace zoo
