// genner/core/onednn.hpp: `x W^T` for frozen weights through oneDNN's matmul, with W reordered once
// into the blocked layout the matmul kernel reads (on CPUs with AMX: its tile layout) instead of on
// every call, as LibTorch's own bf16 and quantized products do. bf16 keeps W in bf16; int8 keeps W
// as int8 with a symmetric scale per output row and quantizes each call's activations to uint8 with
// one scale and zero point per tensor (the same choice of parameters as LibTorch's dynamic
// quantization), correcting the zero point with W's row sums inside the matmul kernel.
//
//   auto w = genner::core::onednn::PackedLinear::bf16(weight);   // weight [out, in]
//   torch::Tensor y = w(x);                                     // x [..., in] -> [..., out]
//
// Kernels are compiled once per (form, rows, in, out) and shared by every projection of that shape.
//
// `strided_matmul(a, b)` multiplies fp32 batches of matrices (attention's scores and weighted values)
// as one oneDNN matmul over their strides as they are, where LibTorch's CPU bmm without MKL copies
// transposed operands and runs one BLAS call per matrix (genner/core/matmul.hpp gives it autograd).
//
// GENNER_WITH_ONEDNN (set by genner's CMake package from its GENNER_ONEDNN option; otherwise 1 when
// <dnnl.hpp> is on the include path) says whether this build has oneDNN. Without it only
// `available` and `Form` are declared, and callers take LibTorch's own products or refuse.
#pragma once

#ifndef GENNER_WITH_ONEDNN
#if __has_include(<dnnl.hpp>)
#define GENNER_WITH_ONEDNN 1
#else
#define GENNER_WITH_ONEDNN 0
#endif
#endif

#include <ATen/Parallel.h>
#include <torch/types.h>

#if GENNER_WITH_ONEDNN
#include <dnnl.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>
#include <unordered_map>
#include <utility>

#include <genner/core/error.hpp>
#include <genner/core/threading.hpp>

namespace genner::core::onednn {

/// Whether this build multiplies through oneDNN (see GENNER_WITH_ONEDNN above).
inline constexpr bool available = GENNER_WITH_ONEDNN != 0;

enum class Form { bf16, int8 };
inline const char* form_name(Form f) { return f == Form::bf16 ? "bf16" : "int8"; }

/// The rows of a bf16/int8 CPU product to run as one matmul: `rows` rounded down to a multiple of
/// 64 when more than one OpenMP thread runs it and rows is not one already, else `rows`. oneDNN
/// 2.6's AMX matmul (LibTorch's bf16 products run on it too) is 5-10x slower on two threads for
/// many row counts that are not multiples of 64: on a 2-core Intel Xeon with AMX (a KVM guest), 992 rows
/// (a batch of 16 x 62 tokens) by 512 x 2048 took 21-45 ms against 4.8 ms for 960 rows and 5.2 ms
/// for 1024 (one thread: 8-9 ms for each). Products split there (packed ones) or padded to the
/// next multiple (T5's projections in training) avoid the slow kernels (bench/bench_products.cpp).
inline constexpr int64_t row_block = 64;
inline int64_t aligned_rows(int64_t rows, int threads = at::get_num_threads()) {
  if (threads < 2 || rows <= row_block || rows % row_block == 0) return rows;
  return rows / row_block * row_block;
}
/// `rows` rounded up to a multiple of row_block (the padded form of a product aligned_rows splits).
inline int64_t padded_rows(int64_t rows) { return (rows + row_block - 1) / row_block * row_block; }

#if GENNER_WITH_ONEDNN
inline dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
inline dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

/// How a packed weight is kept.

namespace detail {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

inline dt source_type(Form f) { return f == Form::bf16 ? dt::bf16 : dt::u8; }
inline dt weight_type(Form f) { return f == Form::bf16 ? dt::bf16 : dt::s8; }
inline dt result_type(Form f) { return f == Form::bf16 ? dt::bf16 : dt::f32; }

/// int8's matmul adds a vector to each row and multiplies it by another (the zero-point correction
/// and the scales), fused into the kernel.
inline dnnl::primitive_attr attributes(Form f, int64_t out) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (f == Form::int8) {
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_add, dnnl::memory::desc({1, out}, dt::f32, tag::ab));
    ops.append_binary(dnnl::algorithm::binary_mul, dnnl::memory::desc({1, out}, dt::f32, tag::ab));
    attr.set_post_ops(ops);
  }
  return attr;
}

inline dnnl::matmul::primitive_desc describe(Form f, int64_t rows, int64_t in, int64_t out,
                                             const dnnl::memory::desc& weights) {
  return dnnl::matmul::primitive_desc(
      dnnl::matmul::desc(dnnl::memory::desc({rows, in}, source_type(f), tag::ab), weights,
                         dnnl::memory::desc({rows, out}, result_type(f), tag::ab)),
      attributes(f, out), cpu_engine());
}

/// The layout oneDNN's matmul wants W [in, out] in (the same for every number of rows).
inline dnnl::memory::desc packed_layout(Form f, int64_t in, int64_t out) {
  return describe(f, 32, in, out, dnnl::memory::desc({in, out}, weight_type(f), tag::any)).weights_desc();
}

/// A compiled primitive, the name of its implementation and the scratchpad one execution needs.
/// Every primitive here is created with a user-managed scratchpad, which each execution allocates
/// for itself: a primitive shared process-wide may then run on several threads at once (oneDNN's
/// library-managed scratchpad is shared between executions and allows neither).
struct Kernel {
  dnnl::primitive primitive;
  std::string implementation;
  dnnl::memory::desc scratchpad;
  template <class Primitive>
  static Kernel of(const typename Primitive::primitive_desc& pd) {
    return Kernel{Primitive(pd), pd.impl_info_str(), pd.scratchpad_desc()};
  }
  explicit operator bool() const { return static_cast<bool>(primitive); }
  void execute(std::unordered_map<int, dnnl::memory> args) const {
    torch::Tensor scratch;
    if (const auto bytes = scratchpad.get_size(); bytes > 0) {
      scratch = torch::empty({static_cast<int64_t>(bytes)}, torch::kUInt8);
      args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad, cpu_engine(), scratch.data_ptr()));
    }
    primitive.execute(thread_stream(), args);
    thread_stream().wait();
  }
};

/// Compiled kernels, shared process-wide: matmuls by (form, rows, in, out), and the quantizing
/// reorder by element count (form -1).
struct Kernels {
  std::mutex mutex;
  std::map<std::tuple<int, int64_t, int64_t, int64_t>, Kernel> compiled;
};
inline Kernels& kernels() {
  static Kernels k;
  return k;
}
template <class Make>
const Kernel& cached(std::tuple<int, int64_t, int64_t, int64_t> key, Make make) {
  auto& k = kernels();
  std::lock_guard<std::mutex> lock(k.mutex);
  auto it = k.compiled.find(key);
  if (it == k.compiled.end()) {
    if (k.compiled.size() >= 4096) k.compiled.clear();  // bounded: row counts of odd batches
    it = k.compiled.emplace(key, make()).first;
  }
  return it->second;
}
inline const Kernel& kernel(Form f, int64_t rows, int64_t in, int64_t out, const dnnl::memory::desc& weights) {
  return cached({static_cast<int>(f), rows, in, out}, [&] {
    try {
      return Kernel::of<dnnl::matmul>(describe(f, rows, in, out, weights));
    } catch (const dnnl::error& e) {
      fail("oneDNN has no ", form_name(f), " matmul for ", rows, " x ", in, " by ", in, " x ", out,
           " with a packed weight: ", e.what());
    }
  });
}
/// A plain strided oneDNN descriptor of a tensor's sizes and strides.
inline dnnl::memory::desc strided_desc(const torch::Tensor& t, dt type) {
  return dnnl::memory::desc(dnnl::memory::dims(t.sizes().begin(), t.sizes().end()), type,
                            dnnl::memory::dims(t.strides().begin(), t.strides().end()));
}
/// fp32 matmuls over strided batches, by the sizes and strides of both operands; a null primitive
/// where oneDNN has only its reference kernel (slower than LibTorch's loop) or none.
struct StridedKernels {
  std::mutex mutex;
  std::map<std::vector<int64_t>, Kernel> compiled;
};
inline StridedKernels& strided_kernels() {
  static StridedKernels k;
  return k;
}
/// The contiguous descriptor of `a @ b`'s result.
inline dnnl::memory::desc product_desc(const torch::Tensor& a, const torch::Tensor& b) {
  dnnl::memory::dims sizes(a.sizes().begin(), a.sizes().end()), strides(sizes.size());
  sizes.back() = b.size(-1);
  int64_t step = 1;
  for (auto i = static_cast<int64_t>(sizes.size()) - 1; i >= 0; --i) {
    strides[i] = step;
    step *= sizes[i];
  }
  return dnnl::memory::desc(sizes, dt::f32, strides);
}
/// The OpenMP threads a strided product of a and b runs on: every core's worth (loop_threads()) for
/// products of 2^22 multiply-adds or more (a training batch's attention), else the caller's OpenMP
/// setting (one thread under fp32's policy). Waking a sleeping OpenMP thread took 40-50 us on the
/// 2-core AMD EPYC: a decoder step's products (32 rows x 8 heads, 20-60 keys) ran 1.4-2.3x slower
/// on two threads, a training batch's attention backward about 1.7x faster.
inline int strided_threads(const torch::Tensor& a, const torch::Tensor& b) {
  const int current = OpenMpThreads::current();
  return a.numel() * b.size(-1) >= (int64_t{1} << 22) ? std::max(current, loop_threads()) : current;
}
/// The kernel for a @ b on `threads` OpenMP threads (oneDNN fixes a primitive's thread count when
/// it is created).
inline const Kernel& strided_kernel(const torch::Tensor& a, const torch::Tensor& b, int threads) {
  std::vector<int64_t> key(a.sizes().begin(), a.sizes().end());
  key.insert(key.end(), a.strides().begin(), a.strides().end());
  key.insert(key.end(), b.sizes().begin(), b.sizes().end());
  key.insert(key.end(), b.strides().begin(), b.strides().end());
  key.push_back(threads);
  auto& k = strided_kernels();
  std::lock_guard<std::mutex> lock(k.mutex);
  auto it = k.compiled.find(key);
  if (it != k.compiled.end()) return it->second;
  if (k.compiled.size() >= 4096) k.compiled.clear();  // bounded: lengths of odd batches
  Kernel made;
  const OpenMpThreads scope(threads);
  try {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(strided_desc(a, dt::f32), strided_desc(b, dt::f32), product_desc(a, b)), attr,
        cpu_engine());
    if (std::string(pd.impl_info_str()).rfind("ref", 0) != 0) made = Kernel::of<dnnl::matmul>(pd);
    else made.implementation = pd.impl_info_str();
  } catch (const dnnl::error& e) {
    made.implementation = e.what();
  }
  return k.compiled.emplace(std::move(key), std::move(made)).first->second;
}

/// fp32 -> uint8 `round(x * scale) + zero`, saturated, with scale and zero given at run time.
inline const Kernel& quantizer(int64_t n) {
  return cached({-1, n, 0, 0}, [&] {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
    attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    dnnl::reorder::primitive_desc pd(cpu_engine(), dnnl::memory::desc({n}, dt::f32, tag::a), cpu_engine(),
                                     dnnl::memory::desc({n}, dt::u8, tag::a), attr);
    return Kernel::of<dnnl::reorder>(pd);
  });
}

/// The smallest and largest of x[0..n) (n > 0), in lanes the compiler vectorises.
inline std::pair<float, float> min_max(const float* x, int64_t n) {
  constexpr int lanes = 16;
  float lo[lanes], hi[lanes];
  for (int j = 0; j < lanes; ++j) lo[j] = hi[j] = x[0];
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (int j = 0; j < lanes; ++j) {
      const float v = x[i + j];
      lo[j] = v < lo[j] ? v : lo[j];
      hi[j] = v > hi[j] ? v : hi[j];
    }
  for (; i < n; ++i) {
    lo[0] = std::min(lo[0], x[i]);
    hi[0] = std::max(hi[0], x[i]);
  }
  return {*std::min_element(lo, lo + lanes), *std::max_element(hi, hi + lanes)};
}
}  // namespace detail

/// A frozen W [out, in] packed for oneDNN's matmul; calling it computes `x W^T` for x [..., in].
/// Inference only: no gradient flows through it. Copies share the packed weight.
class PackedLinear {
 public:
  /// W kept in bf16; x is converted to bf16 and the result is bf16.
  static PackedLinear bf16(const torch::Tensor& weight) { return PackedLinear(Form::bf16, weight, 0); }
  /// W kept as int8 (|q| <= weight_max, one scale per output row); the result has x's dtype.
  static PackedLinear int8(const torch::Tensor& weight, double weight_max) {
    return PackedLinear(Form::int8, weight, weight_max);
  }

  torch::Tensor operator()(const torch::Tensor& x) const {
    GENNER_CHECK(x.is_cpu() && x.dim() >= 1 && x.size(-1) == in_, "packed projection: expected an input [..., ", in_,
                 "] on the CPU, found ", x.sizes(), " on ", x.device().str());
    auto sizes = x.sizes().vec();
    sizes.back() = out_;
    const int64_t rows = x.numel() / in_;
    if (rows == 0) return torch::zeros(sizes, x.options().dtype(form_ == Form::bf16 ? torch::kBFloat16 : x.scalar_type()));
    auto flat = x.reshape({rows, in_});
    if (form_ == Form::bf16) {
      auto src = flat.to(torch::kBFloat16).contiguous();
      auto y = torch::empty({rows, out_}, src.options());
      run(rows, src.data_ptr(), y.data_ptr());
      return y.view(sizes);
    }
    // uint8 activations over [min(x, 0), max(x, 0)], as LibTorch's dynamic quantization chooses them;
    // y = (q W^T - zero * row sums of W) * (scale * W's row scales), the last two fused in the matmul.
    auto xf = flat.to(torch::kFloat).contiguous();
    const auto [lo_x, hi_x] = detail::min_max(xf.data_ptr<float>(), xf.numel());
    const double lo = std::min(0.0, static_cast<double>(lo_x)), hi = std::max(0.0, static_cast<double>(hi_x));
    GENNER_CHECK(std::isfinite(lo) && std::isfinite(hi), "packed int8 projection: the input holds non-finite values");
    const double scale = hi > lo ? (hi - lo) / 255.0 : 1.0;
    const auto zero = static_cast<int32_t>(std::clamp<int64_t>(std::llround(-lo / scale), 0, 255));
    auto q = torch::empty({rows, in_}, xf.options().dtype(torch::kByte));
    float inverse = static_cast<float>(1.0 / scale);
    int32_t zero_point = zero;
    {
      using detail::dt;
      using detail::tag;
      const auto n = rows * in_;
      dnnl::memory from({{n}, dt::f32, tag::a}, cpu_engine(), xf.data_ptr());
      dnnl::memory to({{n}, dt::u8, tag::a}, cpu_engine(), q.data_ptr());
      dnnl::memory s({{1}, dt::f32, tag::a}, cpu_engine(), &inverse);
      dnnl::memory z({{1}, dt::s32, tag::a}, cpu_engine(), &zero_point);
      detail::quantizer(n).execute({{DNNL_ARG_FROM, from},
                                    {DNNL_ARG_TO, to},
                                    {DNNL_ARG_ATTR_OUTPUT_SCALES, s},
                                    {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, z}});
    }
    auto add = (state_->row_sums * static_cast<double>(-zero)).contiguous();
    auto mul = (state_->scales * scale).contiguous();
    auto y = torch::empty({rows, out_}, xf.options());
    run(rows, q.data_ptr(), y.data_ptr(), add.data_ptr(), mul.data_ptr());
    return y.view(sizes).to(x.scalar_type());
  }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  Form form() const { return form_; }
  /// Bytes the packed weight (and int8's scales and row sums) take.
  int64_t bytes() const {
    int64_t n = state_->packed.nbytes();
    if (state_->scales.defined()) n += state_->scales.nbytes() + state_->row_sums.nbytes();
    return n;
  }
  /// oneDNN's name for the kernel a call with `rows` rows runs (e.g. "brg:avx512_core_amx_bf16").
  std::string implementation(int64_t rows) const {
    return detail::kernel(form_, rows, in_, out_, state_->layout).implementation;
  }

 private:
  struct State {
    dnnl::memory::desc layout;
    torch::Tensor packed, scales, row_sums;  ///< int8: scales and row sums of q, [out] fp32
  };

  PackedLinear(Form form, const torch::Tensor& weight, double weight_max) : form_(form) {
    GENNER_CHECK(weight.dim() == 2 && weight.is_floating_point() && weight.is_cpu(),
                 "packed projection: expected a floating-point CPU weight [out, in], found ", weight.sizes(), " ",
                 weight.scalar_type(), " on ", weight.device().str());
    out_ = weight.size(0);
    in_ = weight.size(1);
    state_ = std::make_shared<State>();
    state_->layout = detail::packed_layout(form, in_, out_);
    torch::NoGradGuard no_grad;
    torch::Tensor plain;
    if (form == Form::bf16) {
      plain = weight.detach().to(torch::kBFloat16).contiguous();
    } else {
      GENNER_CHECK(weight_max >= 1 && weight_max <= 127, "packed projection: int8 weights need 1 <= weight_max <= 127");
      auto w = weight.detach().to(torch::kFloat);
      state_->scales = (w.abs().amax(1) / weight_max).clamp_min(1e-12);
      plain = (w / state_->scales.unsqueeze(1)).round_().clamp_(-weight_max, weight_max).to(torch::kChar).contiguous();
      state_->row_sums = plain.sum(1, /*keepdim=*/false, torch::kFloat);
    }
    state_->packed = torch::empty({static_cast<int64_t>(state_->layout.get_size())}, torch::kUInt8);
    // W [out, in] row-major is oneDNN's [in, out] in format "ba".
    dnnl::memory from(dnnl::memory::desc({in_, out_}, detail::weight_type(form), detail::tag::ba), cpu_engine(),
                      plain.data_ptr());
    dnnl::memory to(state_->layout, cpu_engine(), state_->packed.data_ptr());
    dnnl::reorder(from, to).execute(thread_stream(), from, to);
    thread_stream().wait();
  }

  /// The matmul over `rows` rows, as two (aligned_rows, then the rest) where that is faster.
  void run(int64_t rows, void* src, void* dst, void* add = nullptr, void* mul = nullptr) const {
    const int64_t head = aligned_rows(rows);
    run_rows(head, src, dst, add, mul);
    if (head == rows) return;
    const int64_t src_bytes = form_ == Form::bf16 ? 2 : 1, dst_bytes = form_ == Form::bf16 ? 2 : 4;
    run_rows(rows - head, static_cast<char*>(src) + head * in_ * src_bytes,
             static_cast<char*>(dst) + head * out_ * dst_bytes, add, mul);
  }
  void run_rows(int64_t rows, void* src, void* dst, void* add, void* mul) const {
    const auto& k = detail::kernel(form_, rows, in_, out_, state_->layout);
    using detail::dt;
    using detail::tag;
    dnnl::memory s(dnnl::memory::desc({rows, in_}, detail::source_type(form_), tag::ab), cpu_engine(), src);
    dnnl::memory w(state_->layout, cpu_engine(), state_->packed.data_ptr());
    dnnl::memory d(dnnl::memory::desc({rows, out_}, detail::result_type(form_), tag::ab), cpu_engine(), dst);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, d}};
    if (form_ == Form::int8) {
      const dnnl::memory::desc vector({1, out_}, dt::f32, tag::ab);
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, dnnl::memory(vector, cpu_engine(), add));
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, dnnl::memory(vector, cpu_engine(), mul));
    }
    k.execute(std::move(args));
  }

  Form form_;
  int64_t in_ = 0, out_ = 0;
  std::shared_ptr<State> state_;
};

/// Whether strided_matmul can multiply `a` [..., M, K] by `b` [..., K, N]: fp32 CPU tensors of 3 or 4
/// dimensions with the same batch sizes, no zero stride or empty dimension, and a fast kernel for
/// their layouts.
inline bool strided_matmul_fits(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.defined() || !b.defined() || !a.is_cpu() || !b.is_cpu()) return false;
  if (a.scalar_type() != torch::kFloat || b.scalar_type() != torch::kFloat) return false;
  const auto d = a.dim();
  if (d < 3 || d > 4 || b.dim() != d || a.size(-1) != b.size(-2)) return false;
  for (int64_t i = 0; i < d; ++i) {
    if (a.size(i) == 0 || b.size(i) == 0 || a.stride(i) == 0 || b.stride(i) == 0) return false;
    if (i < d - 2 && a.size(i) != b.size(i)) return false;
  }
  return static_cast<bool>(detail::strided_kernel(a, b, detail::strided_threads(a, b)));
}
/// `a @ b` (contiguous result) for operands strided_matmul_fits accepts, as one oneDNN matmul over
/// their strides as they are; refused for others.
inline torch::Tensor strided_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  GENNER_CHECK(strided_matmul_fits(a, b), "strided_matmul: expected fp32 CPU batches [..., M, K] and [..., K, N] ",
               "with equal batch sizes and a fast oneDNN kernel, found ", a.sizes(), " ", a.scalar_type(), " and ",
               b.sizes(), " ", b.scalar_type());
  auto sizes = a.sizes().vec();
  sizes.back() = b.size(-1);
  auto out = torch::empty(sizes, a.options());
  const int threads = detail::strided_threads(a, b);
  const auto& k = detail::strided_kernel(a, b, threads);
  const OpenMpThreads scope(threads);
  using detail::dt;
  dnnl::memory ma(detail::strided_desc(a, dt::f32), cpu_engine(), a.data_ptr());
  dnnl::memory mb(detail::strided_desc(b, dt::f32), cpu_engine(), b.data_ptr());
  dnnl::memory mo(detail::product_desc(a, b), cpu_engine(), out.data_ptr());
  k.execute({{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mo}});
  return out;
}
#endif  // GENNER_WITH_ONEDNN

}  // namespace genner::core::onednn
