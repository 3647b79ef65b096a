// GemmBf16 through oneDNN's matmul primitive (one primitive per product shape, made once), PackedProduct (a
// matmul on weights reordered once into the layout it chose), and bf16 detection.
#include "ops/bf16_gemm.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "util/errors.h"

#ifdef CHARLM_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace charlm {

void ConvertToBf16(const float* __restrict src, std::size_t n, Bf16* __restrict dst) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = ToBf16(src[i]);
}

bool SetPassiveOpenMpWait() {
#ifdef CHARLM_HAVE_ONEDNN
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return false;
  return setenv("OMP_WAIT_POLICY", "PASSIVE", 1) == 0;
#else
  return false;  // no OpenMP runtime is linked
#endif
}

void RequirePrecision(Precision precision, const std::string& setting, const std::string& fix) {
  // As the user wrote it: `--precision bf16` on a command line, `train.precision "bf16"` in a config.
  const std::string value(EnumName(precision));
  const std::string named = setting.rfind("--", 0) == 0 ? setting + " " + value : setting + " \"" + value + "\"";
  if (precision == Precision::kBf16) RequireBf16(named, fix);
#ifndef CHARLM_HAVE_ONEDNN
  if (precision == Precision::kFp32Packed) {
    throw UserError(named + " needs oneDNN's packed matrix products, but this charlm was built without oneDNN "
                    "(install libdnnl-dev, e.g. bash scripts/setup.sh, and rebuild): " + fix);
  }
#endif
}

#ifdef CHARLM_HAVE_ONEDNN
namespace {
// libgomp comes with libdnnl, not on charlm's own link line, so its entry points are looked up at run time.
template <typename Fn>
Fn OpenMpFunction(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace
#endif

void SetOpenMpThreads(int threads) {
#ifdef CHARLM_HAVE_ONEDNN
  static const auto set_num_threads = OpenMpFunction<void (*)(int)>("omp_set_num_threads");
  if (threads > 0 && set_num_threads != nullptr) set_num_threads(threads);
#else
  (void)threads;
#endif
}

int OpenMpThreads() {
#ifdef CHARLM_HAVE_ONEDNN
  static const auto get_max_threads = OpenMpFunction<int (*)()>("omp_get_max_threads");
  return get_max_threads != nullptr ? get_max_threads() : 0;
#else
  return 0;
#endif
}

std::string OpenMpWaitPolicy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  return policy != nullptr ? policy : "";
}

void RequireBf16(const std::string& setting, const std::string& fix) {
  const std::string why = Bf16Unavailable();
  if (!why.empty()) throw UserError(setting + " needs bf16 matrix products, but " + why + ": " + fix);
}

#ifdef CHARLM_HAVE_ONEDNN
namespace {

// Everything a primitive depends on; the products of a model are a few dozen distinct shapes.
struct ProductShape {
  bool trans_a, trans_b;
  int m, n, k, lda, ldb, ldc;
  bool accumulate;
  bool operator==(const ProductShape&) const = default;
};

struct CachedProduct {
  ProductShape shape;
  dnnl::matmul primitive;
  dnnl::memory a, b, c;  // user memory whose data handles are pointed at each call's buffers
};

class OnednnContext {
 public:
  OnednnContext() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

  void Run(const ProductShape& s, const Bf16* a, const Bf16* b, float* c) {
    CachedProduct& p = Find(s);
    p.a.set_data_handle(const_cast<Bf16*>(a));
    p.b.set_data_handle(const_cast<Bf16*>(b));
    p.c.set_data_handle(c);
    p.primitive.execute(stream_, {{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, p.b}, {DNNL_ARG_DST, p.c}});
    stream_.wait();
  }

  const dnnl::engine& engine() const { return engine_; }
  dnnl::stream& stream() { return stream_; }

 private:
  CachedProduct& Find(const ProductShape& s) {
    for (auto& p : cache_) {
      if (p->shape == s) return *p;
    }
    using dims = dnnl::memory::dims;
    using dt = dnnl::memory::data_type;
    // Row-major op(A) (m x k): element (i, p) at i*lda + p, or transposed at p*lda + i; likewise B and C.
    const dnnl::memory::desc a_md(dims{s.m, s.k}, dt::bf16, s.trans_a ? dims{1, s.lda} : dims{s.lda, 1});
    const dnnl::memory::desc b_md(dims{s.k, s.n}, dt::bf16, s.trans_b ? dims{1, s.ldb} : dims{s.ldb, 1});
    const dnnl::memory::desc c_md(dims{s.m, s.n}, dt::f32, dims{s.ldc, 1});
    dnnl::primitive_attr attr;
    if (s.accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, engine_);
    auto entry = std::make_unique<CachedProduct>(CachedProduct{s, dnnl::matmul(pd), dnnl::memory(a_md, engine_, nullptr),
                                                               dnnl::memory(b_md, engine_, nullptr),
                                                               dnnl::memory(c_md, engine_, nullptr)});
    cache_.push_back(std::move(entry));
    return *cache_.back();
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<std::unique_ptr<CachedProduct>> cache_;
};

OnednnContext& Context() {
  static OnednnContext context;
  return context;
}

const char* IsaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    default: return "an older ISA";
  }
}

}  // namespace

struct PackedProduct::State {
  struct Shape {
    dnnl::memory::data_type type;
    bool trans_b;
    int m, n, k, ldb, lda, ldc;
    bool accumulate;
    bool operator==(const Shape&) const = default;
  };
  Shape shape;
  dnnl::matmul primitive;
  dnnl::memory a, b_user, b_packed, c;  // b_packed owns its buffer; the others point at the caller's
  dnnl::reorder pack;                   // b_user -> b_packed
  bool reordered;
};

namespace {

std::unique_ptr<PackedProduct::State> MakePacked(const PackedProduct::State::Shape& s) {
  using dims = dnnl::memory::dims;
  const dnnl::engine& engine = Context().engine();
  const dnnl::memory::desc a_md(dims{s.m, s.k}, s.type, dims{s.lda, 1});
  const dnnl::memory::desc b_any(dims{s.k, s.n}, s.type, dnnl::memory::format_tag::any);
  const dnnl::memory::desc b_user_md(dims{s.k, s.n}, s.type, s.trans_b ? dims{1, s.ldb} : dims{s.ldb, 1});
  const dnnl::memory::desc c_md(dims{s.m, s.n}, dnnl::memory::data_type::f32, dims{s.ldc, 1});
  dnnl::primitive_attr attr;
  if (s.accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_any, c_md), attr, engine);
  auto state = std::make_unique<PackedProduct::State>();
  state->shape = s;
  state->primitive = dnnl::matmul(pd);
  state->a = dnnl::memory(a_md, engine, nullptr);
  state->b_user = dnnl::memory(b_user_md, engine, nullptr);
  state->b_packed = dnnl::memory(pd.weights_desc(), engine);
  state->c = dnnl::memory(c_md, engine, nullptr);
  state->pack = dnnl::reorder(state->b_user, state->b_packed);
  state->reordered = pd.weights_desc() != b_user_md;
  return state;
}

void Pack(std::unique_ptr<PackedProduct::State>& state, const PackedProduct::State::Shape& shape, const void* b) {
  assert(shape.m > 0 && shape.n > 0 && shape.k > 0);
  if (state == nullptr || !(state->shape == shape)) state = MakePacked(shape);
  state->b_user.set_data_handle(const_cast<void*>(b));
  state->pack.execute(Context().stream(), state->b_user, state->b_packed);
  Context().stream().wait();
}

void Run(PackedProduct::State& state, const void* a, float* c) {
  state.a.set_data_handle(const_cast<void*>(a));
  state.c.set_data_handle(c);
  state.primitive.execute(Context().stream(),
                          {{DNNL_ARG_SRC, state.a}, {DNNL_ARG_WEIGHTS, state.b_packed}, {DNNL_ARG_DST, state.c}});
  Context().stream().wait();
}

}  // namespace

void PackedProduct::PackBf16(bool trans_b, int m, int n, int k, const Bf16* b, int ldb, int lda, int ldc, float beta) {
  assert(beta == 0.0f || beta == 1.0f);
  Pack(state_, {dnnl::memory::data_type::bf16, trans_b, m, n, k, ldb, lda, ldc, beta != 0.0f}, b);
}

void PackedProduct::RunBf16(const Bf16* a, float* c) {
  assert(state_ != nullptr && state_->shape.type == dnnl::memory::data_type::bf16);
  Run(*state_, a, c);
}

void PackedProduct::PackFp32(bool trans_b, int m, int n, int k, const float* b, int ldb, int lda, int ldc, float beta) {
  assert(beta == 0.0f || beta == 1.0f);
  Pack(state_, {dnnl::memory::data_type::f32, trans_b, m, n, k, ldb, lda, ldc, beta != 0.0f}, b);
}

void PackedProduct::RunFp32(const float* a, float* c) {
  assert(state_ != nullptr && state_->shape.type == dnnl::memory::data_type::f32);
  Run(*state_, a, c);
}

bool PackedProduct::reordered() const { return state_ != nullptr && state_->reordered; }

std::string Bf16Unavailable() {
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return "";
  return std::string("oneDNN's kernels here are ") + IsaName(isa) +
         " (this CPU, or ONEDNN_MAX_CPU_ISA, has no avx512_bf16 or AMX)";
}

void GemmBf16(bool trans_a, bool trans_b, int m, int n, int k, const Bf16* a, int lda, const Bf16* b, int ldb,
              float beta, float* c, int ldc) {
  assert(beta == 0.0f || beta == 1.0f);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // oneDNN refuses empty reductions; the product is zero
    if (beta == 0.0f) {
      for (int i = 0; i < m; ++i) std::fill(c + static_cast<std::size_t>(i) * ldc, c + static_cast<std::size_t>(i) * ldc + n, 0.0f);
    }
    return;
  }
  Context().Run({trans_a, trans_b, m, n, k, lda, ldb, ldc, beta != 0.0f}, a, b, c);
}

std::string OnednnDescription() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         ", " + IsaName(dnnl_get_effective_cpu_isa());
}

#else  // built without oneDNN

std::string Bf16Unavailable() {
  return "this charlm was built without oneDNN (install libdnnl-dev, e.g. bash scripts/setup.sh, and rebuild)";
}

void GemmBf16(bool, bool, int, int, int, const Bf16*, int, const Bf16*, int, float, float*, int) {
  assert(false && "GemmBf16 without oneDNN: RequireBf16 was skipped");
}

std::string OnednnDescription() { return "none (built without oneDNN)"; }

struct PackedProduct::State {};

void PackedProduct::PackBf16(bool, int, int, int, const Bf16*, int, int, int, float) {
  assert(false && "PackedProduct without oneDNN: RequireBf16 was skipped");
}
void PackedProduct::RunBf16(const Bf16*, float*) { assert(false && "PackedProduct without oneDNN"); }
void PackedProduct::PackFp32(bool, int, int, int, const float*, int, int, int, float) {
  assert(false && "PackedProduct without oneDNN");
}
void PackedProduct::RunFp32(const float*, float*) { assert(false && "PackedProduct without oneDNN"); }
bool PackedProduct::reordered() const { return false; }

#endif

PackedProduct::PackedProduct() = default;
PackedProduct::~PackedProduct() = default;
PackedProduct::PackedProduct(PackedProduct&&) noexcept = default;
PackedProduct& PackedProduct::operator=(PackedProduct&&) noexcept = default;

}  // namespace charlm
