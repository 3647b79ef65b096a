// oneDNN's RNN primitive (LSTM, vanilla RNN, linear-before-reset GRU) behind OnednnRecurrent: charlm's parameters
// staged in oneDNN's gate order and reordered into the primitive's layouts, its gradients added back into charlm's.
#include "model/onednn_recurrent.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/errors.h"

#ifdef CHARLM_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace charlm {

std::string OnednnRecurrentRefusal(const RecurrentShape& shape, double recurrent_dropout) {
#ifndef CHARLM_HAVE_ONEDNN
  (void)shape;
  (void)recurrent_dropout;
  return "this charlm was built without oneDNN (install libdnnl-dev and rebuild)";
#else
  if (shape.cell == CellKind::kGru && !shape.reset_after) {
    return "oneDNN has no GRU with the reset before the product (model.reset_after false, the book's form): its "
           "lbr_gru is the reset_after form";
  }
  if (recurrent_dropout > 0) return "oneDNN's RNN primitive has no recurrent dropout (model.recurrent_dropout > 0)";
  return {};
#endif
}

#ifdef CHARLM_HAVE_ONEDNN
namespace {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;
using Dt = memory::data_type;

// For each of oneDNN's gates, charlm's gate index: the GRU's u, r, o are charlm's z, r, n; LSTM and RNN agree.
std::array<int, 4> CharlmGateOf(CellKind cell) {
  if (cell == CellKind::kGru) return {1, 0, 2, 2};
  return {0, 1, 2, 3};
}

// Copies a (rows, g*h) kernel from charlm's gate order into oneDNN's (ldigo with L = D = 1, the same row-major
// shape), or adds oneDNN's back into charlm's (accumulate).
void PermuteGates(const float* src, int rows, int gates, int h, const std::array<int, 4>& charlm_gate_of, float* dst,
                  bool to_onednn, bool accumulate) {
  const std::size_t g_h = static_cast<std::size_t>(gates) * h;
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < gates; ++k) {
      const std::size_t onednn_at = r * g_h + static_cast<std::size_t>(k) * h;
      const std::size_t charlm_at = r * g_h + static_cast<std::size_t>(charlm_gate_of[k]) * h;
      const float* from = src + (to_onednn ? charlm_at : onednn_at);
      float* to = dst + (to_onednn ? onednn_at : charlm_at);
      if (accumulate) {
        for (int j = 0; j < h; ++j) to[j] += from[j];
      } else {
        std::copy(from, from + h, to);
      }
    }
  }
}

}  // namespace

struct OnednnRecurrent::Impl {
  // The primitives and memory objects of one (steps, batch), made once.
  struct Plan {
    int steps = 0, batch = 0;
    dnnl::primitive forward, backward;
    dnnl::reorder w_x_to_forward, w_h_to_forward, w_x_to_backward, w_h_to_backward;
    dnnl::reorder diff_w_x_back, diff_w_h_back;  // the primitive's diff weights layout to ldigo, where they differ
    bool diff_weights_reordered = false;
    memory w_x_forward, w_h_forward, w_x_backward, w_h_backward;  // in the primitives' layouts, owned by oneDNN
    memory diff_w_x, diff_w_h;                                     // in the backward primitive's layout
    memory workspace, forward_scratchpad, backward_scratchpad;
    // Memory objects whose data handles are pointed at each call's buffers.
    memory src_layer, dst_layer, diff_dst_layer, diff_src_layer, src_iter, diff_src_iter, diff_src_iter_c;
    std::unordered_map<int, memory> forward_args, backward_args;
  };

  RecurrentShape shape;
  int max_steps, max_batch;
  bool bf16;
  std::array<int, 4> charlm_gate_of;
  int onednn_bias_gates;  // lbr_gru 4, else as many as gates
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};

  // Staging, sized once for (max_steps, max_batch); in oneDNN's gate order where it differs from charlm's.
  std::vector<float> w_x_staged;     // (I, gH): GRU only (LSTM and RNN read charlm's w_x in place)
  std::vector<float> w_h_staged;     // (H, gH): GRU only
  std::vector<float> bias_staged;    // (g'H): GRU's four biases (LSTM and RNN read charlm's b in place)
  std::vector<float> one_hot;        // (T*B, I): token input, fp32
  std::vector<Bf16> src_layer_bf16;  // (T*B, I): the input, bf16 only
  std::vector<float> h0;             // (B, H): h0 as the forward read it (h_final may overwrite the caller's)
  std::vector<Bf16> h0_bf16;         // (B, H): bf16 only
  std::vector<float> c0;             // (B, H): LSTM
  std::vector<Bf16> dst_layer_bf16;  // (T*B, H): bf16 only, h_1..h_T as the primitive wrote them
  std::vector<float> dst_iter;       // (B, H): fp32 h_T (unused: h_final is taken from the sequence)
  std::vector<Bf16> dst_iter_bf16;   // (B, H)
  std::vector<float> dst_iter_c;     // (B, H): LSTM c_T
  std::vector<float> diff_w_x;       // (I, gH): dL/dw_x in oneDNN's gate order
  std::vector<float> diff_w_h;       // (H, gH)
  std::vector<float> diff_bias;      // (g'H)
  std::vector<float> diff_src_layer;  // (T*B, I): where the input's gradient goes when the caller wants none
  std::vector<float> diff_h0, diff_c0;  // (B, H): the same for the initial state
  std::vector<float> zeros;          // (B, H): dL/dh_T and dL/dc_T from beyond the sequence (detached)

  memory user_w_x, user_w_h, user_bias;  // ldigo/ldgo fp32: staged or charlm's own
  memory user_diff_w_x, user_diff_w_h, user_diff_bias;
  std::deque<Plan> plans;  // a deque: `last` stays valid as plans are added
  Plan* last = nullptr;    // the plan of the last Forward

  Impl(const RecurrentShape& s, int steps, int batch, bool use_bf16)
      : shape(s), max_steps(steps), max_batch(batch), bf16(use_bf16), charlm_gate_of(CharlmGateOf(s.cell)) {
    const int h = s.hidden_size, in = s.input_size, g = s.gates();
    onednn_bias_gates = s.cell == CellKind::kGru ? 4 : g;
    const std::size_t tb = static_cast<std::size_t>(steps) * batch, bh = static_cast<std::size_t>(batch) * h;
    const std::size_t gh = static_cast<std::size_t>(g) * h;
    if (s.cell == CellKind::kGru) {
      w_x_staged.resize(in * gh);
      w_h_staged.resize(h * gh);
    }
    bias_staged.resize(static_cast<std::size_t>(onednn_bias_gates) * h);
    if (bf16) {
      src_layer_bf16.resize(tb * in);
      h0_bf16.resize(bh);
      dst_layer_bf16.resize(tb * h);
      dst_iter_bf16.resize(bh);
    }
    h0.resize(bh);
    dst_iter.resize(bh);
    if (s.has_cell_state()) {
      c0.resize(bh);
      dst_iter_c.resize(bh);
      diff_c0.resize(bh);
    }
    diff_w_x.resize(in * gh);
    diff_w_h.resize(h * gh);
    diff_bias.resize(bias_staged.size());
    diff_src_layer.resize(tb * in);
    diff_h0.resize(bh);
    zeros.assign(bh, 0.0f);
    const Dims w_x_dims{1, 1, in, g, h}, w_h_dims{1, 1, h, g, h}, bias_dims{1, 1, onednn_bias_gates, h};
    user_w_x = memory({w_x_dims, Dt::f32, Tag::ldigo}, engine, nullptr);
    user_w_h = memory({w_h_dims, Dt::f32, Tag::ldigo}, engine, nullptr);
    user_bias = memory({bias_dims, Dt::f32, Tag::ldgo}, engine, nullptr);
    user_diff_w_x = memory({w_x_dims, Dt::f32, Tag::ldigo}, engine, diff_w_x.data());
    user_diff_w_h = memory({w_h_dims, Dt::f32, Tag::ldigo}, engine, diff_w_h.data());
    user_diff_bias = memory({bias_dims, Dt::f32, Tag::ldgo}, engine, diff_bias.data());
  }

  Dt Activations() const { return bf16 ? Dt::bf16 : Dt::f32; }

  Plan& PlanFor(int steps, int batch) {
    for (Plan& p : plans) {
      if (p.steps == steps && p.batch == batch) return p;
    }
    plans.push_back(MakePlan(steps, batch));
    return plans.back();
  }

  Plan MakePlan(int steps, int batch) {
    const int h = shape.hidden_size, in = shape.input_size, g = shape.gates();
    const Dt act = Activations();
    const memory::desc src_layer({steps, batch, in}, act, Tag::tnc);
    const memory::desc dst_layer({steps, batch, h}, act, Tag::tnc);
    const memory::desc state({1, 1, batch, h}, act, Tag::ldnc);
    const memory::desc cell_state({1, 1, batch, h}, Dt::f32, Tag::ldnc);
    const memory::desc w_x({1, 1, in, g, h}, act, Tag::any);
    const memory::desc w_h({1, 1, h, g, h}, act, Tag::any);
    const memory::desc bias({1, 1, onednn_bias_gates, h}, Dt::f32, Tag::ldgo);
    const memory::desc diff_src_layer_md({steps, batch, in}, Dt::f32, Tag::tnc);
    const memory::desc diff_dst_layer_md({steps, batch, h}, Dt::f32, Tag::tnc);
    const memory::desc diff_state({1, 1, batch, h}, Dt::f32, Tag::ldnc);
    const memory::desc diff_w_x_md({1, 1, in, g, h}, Dt::f32, Tag::any);
    const memory::desc diff_w_h_md({1, 1, h, g, h}, Dt::f32, Tag::any);
    const memory::desc diff_bias_md({1, 1, onednn_bias_gates, h}, Dt::f32, Tag::ldgo);
    const auto fwd_kind = dnnl::prop_kind::forward_training;
    const auto bwd_kind = dnnl::prop_kind::backward;
    const auto dir = dnnl::rnn_direction::unidirectional_left2right;
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

    Plan p;
    p.steps = steps;
    p.batch = batch;
    dnnl::primitive_desc fwd_pd, bwd_pd;
    if (shape.cell == CellKind::kLstm) {
      const dnnl::lstm_forward::primitive_desc f(
          {fwd_kind, dir, src_layer, state, cell_state, w_x, w_h, bias, dst_layer, state, cell_state}, attr, engine);
      const dnnl::lstm_backward::primitive_desc b(
          {bwd_kind, dir, src_layer, state, cell_state, w_x, w_h, bias, dst_layer, state, cell_state,
           diff_src_layer_md, diff_state, diff_state, diff_w_x_md, diff_w_h_md, diff_bias_md, diff_dst_layer_md,
           diff_state, diff_state},
          attr, engine, f);
      p.forward = dnnl::lstm_forward(f);
      p.backward = dnnl::lstm_backward(b);
      fwd_pd = f;
      bwd_pd = b;
    } else if (shape.cell == CellKind::kGru) {
      const dnnl::lbr_gru_forward::primitive_desc f(
          {fwd_kind, dir, src_layer, state, w_x, w_h, bias, dst_layer, state}, attr, engine);
      const dnnl::lbr_gru_backward::primitive_desc b(
          {bwd_kind, dir, src_layer, state, w_x, w_h, bias, dst_layer, state, diff_src_layer_md, diff_state,
           diff_w_x_md, diff_w_h_md, diff_bias_md, diff_dst_layer_md, diff_state},
          attr, engine, f);
      p.forward = dnnl::lbr_gru_forward(f);
      p.backward = dnnl::lbr_gru_backward(b);
      fwd_pd = f;
      bwd_pd = b;
    } else {
      const auto activation =
          shape.activation == Activation::kRelu ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh;
      const dnnl::vanilla_rnn_forward::primitive_desc f(
          {fwd_kind, activation, dir, src_layer, state, w_x, w_h, bias, dst_layer, state}, attr, engine);
      const dnnl::vanilla_rnn_backward::primitive_desc b(
          {bwd_kind, activation, dir, src_layer, state, w_x, w_h, bias, dst_layer, state, diff_src_layer_md,
           diff_state, diff_w_x_md, diff_w_h_md, diff_bias_md, diff_dst_layer_md, diff_state},
          attr, engine, f);
      p.forward = dnnl::vanilla_rnn_forward(f);
      p.backward = dnnl::vanilla_rnn_backward(b);
      fwd_pd = f;
      bwd_pd = b;
    }
    const auto md = [](const dnnl::primitive_desc& pd, int arg) {
      return pd.query_md(dnnl::query::exec_arg_md, arg);
    };
    p.w_x_forward = memory(md(fwd_pd, DNNL_ARG_WEIGHTS_LAYER), engine);
    p.w_h_forward = memory(md(fwd_pd, DNNL_ARG_WEIGHTS_ITER), engine);
    p.w_x_backward = memory(md(bwd_pd, DNNL_ARG_WEIGHTS_LAYER), engine);
    p.w_h_backward = memory(md(bwd_pd, DNNL_ARG_WEIGHTS_ITER), engine);
    p.w_x_to_forward = dnnl::reorder(user_w_x, p.w_x_forward);
    p.w_h_to_forward = dnnl::reorder(user_w_h, p.w_h_forward);
    p.w_x_to_backward = dnnl::reorder(user_w_x, p.w_x_backward);
    p.w_h_to_backward = dnnl::reorder(user_w_h, p.w_h_backward);
    const memory::desc diff_w_x_chosen = md(bwd_pd, DNNL_ARG_DIFF_WEIGHTS_LAYER);
    const memory::desc diff_w_h_chosen = md(bwd_pd, DNNL_ARG_DIFF_WEIGHTS_ITER);
    p.diff_weights_reordered = diff_w_x_chosen != user_diff_w_x.get_desc() ||
                               diff_w_h_chosen != user_diff_w_h.get_desc();
    if (p.diff_weights_reordered) {
      p.diff_w_x = memory(diff_w_x_chosen, engine);
      p.diff_w_h = memory(diff_w_h_chosen, engine);
      p.diff_w_x_back = dnnl::reorder(p.diff_w_x, user_diff_w_x);
      p.diff_w_h_back = dnnl::reorder(p.diff_w_h, user_diff_w_h);
    } else {
      p.diff_w_x = user_diff_w_x;
      p.diff_w_h = user_diff_w_h;
    }
    p.workspace = memory(fwd_pd.workspace_desc(), engine);
    p.forward_scratchpad = memory(fwd_pd.scratchpad_desc(), engine);
    p.backward_scratchpad = memory(bwd_pd.scratchpad_desc(), engine);

    p.src_layer = memory(src_layer, engine, nullptr);
    p.dst_layer = memory(dst_layer, engine, bf16 ? static_cast<void*>(dst_layer_bf16.data()) : nullptr);
    p.src_iter = memory(state, engine, bf16 ? static_cast<void*>(h0_bf16.data()) : static_cast<void*>(h0.data()));
    const memory h_final_mem(state, engine,
                             bf16 ? static_cast<void*>(dst_iter_bf16.data()) : static_cast<void*>(dst_iter.data()));
    p.diff_dst_layer = memory(diff_dst_layer_md, engine, nullptr);
    p.diff_src_layer = memory(diff_src_layer_md, engine, nullptr);
    p.diff_src_iter = memory(diff_state, engine, nullptr);
    const memory zero_state(diff_state, engine, zeros.data());
    p.forward_args = {{DNNL_ARG_SRC_LAYER, p.src_layer},     {DNNL_ARG_SRC_ITER, p.src_iter},
                      {DNNL_ARG_WEIGHTS_LAYER, p.w_x_forward}, {DNNL_ARG_WEIGHTS_ITER, p.w_h_forward},
                      {DNNL_ARG_BIAS, user_bias},              {DNNL_ARG_DST_LAYER, p.dst_layer},
                      {DNNL_ARG_DST_ITER, h_final_mem},           {DNNL_ARG_WORKSPACE, p.workspace},
                      {DNNL_ARG_SCRATCHPAD, p.forward_scratchpad}};
    p.backward_args = {{DNNL_ARG_SRC_LAYER, p.src_layer},
                       {DNNL_ARG_SRC_ITER, p.src_iter},
                       {DNNL_ARG_WEIGHTS_LAYER, p.w_x_backward},
                       {DNNL_ARG_WEIGHTS_ITER, p.w_h_backward},
                       {DNNL_ARG_BIAS, user_bias},
                       {DNNL_ARG_DST_LAYER, p.dst_layer},
                       {DNNL_ARG_DST_ITER, h_final_mem},
                       {DNNL_ARG_WORKSPACE, p.workspace},
                       {DNNL_ARG_SCRATCHPAD, p.backward_scratchpad},
                       {DNNL_ARG_DIFF_SRC_LAYER, p.diff_src_layer},
                       {DNNL_ARG_DIFF_SRC_ITER, p.diff_src_iter},
                       {DNNL_ARG_DIFF_WEIGHTS_LAYER, p.diff_w_x},
                       {DNNL_ARG_DIFF_WEIGHTS_ITER, p.diff_w_h},
                       {DNNL_ARG_DIFF_BIAS, user_diff_bias},
                       {DNNL_ARG_DIFF_DST_LAYER, p.diff_dst_layer},
                       {DNNL_ARG_DIFF_DST_ITER, zero_state}};
    if (shape.has_cell_state()) {
      const memory c_in(cell_state, engine, c0.data()), c_out(cell_state, engine, dst_iter_c.data());
      p.diff_src_iter_c = memory(diff_state, engine, nullptr);
      p.forward_args.insert({{DNNL_ARG_SRC_ITER_C, c_in}, {DNNL_ARG_DST_ITER_C, c_out}});
      p.backward_args.insert({{DNNL_ARG_SRC_ITER_C, c_in},
                              {DNNL_ARG_DST_ITER_C, c_out},
                              {DNNL_ARG_DIFF_SRC_ITER_C, p.diff_src_iter_c},
                              {DNNL_ARG_DIFF_DST_ITER_C, zero_state}});
    }
    return p;
  }

  // user_w_x, user_w_h, user_bias pointed at the layer's parameters in oneDNN's gate order.
  void StageParams(const RecurrentParams<float>& params) {
    const int h = shape.hidden_size, in = shape.input_size, g = shape.gates();
    if (shape.cell != CellKind::kGru) {
      user_w_x.set_data_handle(const_cast<float*>(params.w_x));
      user_w_h.set_data_handle(const_cast<float*>(params.w_h));
      user_bias.set_data_handle(const_cast<float*>(params.b));
      return;
    }
    PermuteGates(params.w_x, in, g, h, charlm_gate_of, w_x_staged.data(), true, false);
    PermuteGates(params.w_h, h, g, h, charlm_gate_of, w_h_staged.data(), true, false);
    // [b_u, b_r, b_o, b_o'] = [b_z + b_h_z, b_r + b_h_r, b_n, b_h_n]
    const float* b = params.b;
    const float* b_h = params.b_h;
    float* out = bias_staged.data();
    for (int k = 0; k < 2; ++k) {
      const std::size_t from = static_cast<std::size_t>(charlm_gate_of[k]) * h;
      for (int j = 0; j < h; ++j) out[k * h + j] = b[from + j] + b_h[from + j];
    }
    std::copy(b + 2 * h, b + 3 * h, out + 2 * h);
    std::copy(b_h + 2 * h, b_h + 3 * h, out + 3 * h);
    user_w_x.set_data_handle(w_x_staged.data());
    user_w_h.set_data_handle(w_h_staged.data());
    user_bias.set_data_handle(bias_staged.data());
  }

  // The layer input as the primitive reads it: dense fp32 in place, or copied (bf16), or one-hot rows built.
  void* SourceLayer(const RecurrentInput<float>& input, int rows) {
    const int in = shape.input_size;
    const std::size_t n = static_cast<std::size_t>(rows) * in;
    if (input.dense != nullptr) {
      if (!bf16) return const_cast<float*>(input.dense);
      ConvertToBf16(input.dense, n, src_layer_bf16.data());
      return src_layer_bf16.data();
    }
    assert(input.tokens != nullptr);
    if (bf16) {
      std::fill_n(src_layer_bf16.begin(), n, Bf16{0});
      for (int r = 0; r < rows; ++r) {
        const float value = input.token_scale != nullptr ? input.token_scale[r] : 1.0f;
        src_layer_bf16[static_cast<std::size_t>(r) * in + input.tokens[r]] = ToBf16(value);
      }
      return src_layer_bf16.data();
    }
    if (one_hot.size() < n) one_hot.resize(static_cast<std::size_t>(max_steps) * max_batch * in);  // first use
    std::fill_n(one_hot.begin(), n, 0.0f);
    for (int r = 0; r < rows; ++r) {
      one_hot[static_cast<std::size_t>(r) * in + input.tokens[r]] = input.token_scale != nullptr ? input.token_scale[r] : 1.0f;
    }
    return one_hot.data();
  }
};

OnednnRecurrent::OnednnRecurrent(const RecurrentShape& shape, int max_steps, int max_batch, bool bf16)
    : impl_(std::make_unique<Impl>(shape, max_steps, max_batch, bf16)) {
  assert(OnednnRecurrentRefusal(shape, 0).empty());
}

void OnednnRecurrent::Forward(const RecurrentInput<float>& input, int steps, int batch,
                              const RecurrentParams<float>& params, const float* h0, const float* c0, float* h_seq,
                              float* h_final, float* c_final) {
  Impl& m = *impl_;
  assert(steps > 0 && steps <= m.max_steps && batch > 0 && batch <= m.max_batch && input.projected == nullptr);
  Impl::Plan& p = m.PlanFor(steps, batch);
  m.last = &p;
  const int h = m.shape.hidden_size;
  const std::size_t bh = static_cast<std::size_t>(batch) * h, rows = static_cast<std::size_t>(steps) * batch;
  m.StageParams(params);
  p.w_x_to_forward.execute(m.stream, m.user_w_x, p.w_x_forward);
  p.w_h_to_forward.execute(m.stream, m.user_w_h, p.w_h_forward);
  p.src_layer.set_data_handle(m.SourceLayer(input, static_cast<int>(rows)));
  std::copy(h0, h0 + bh, m.h0.begin());
  if (m.bf16) ConvertToBf16(h0, bh, m.h0_bf16.data());
  if (m.shape.has_cell_state()) std::copy(c0, c0 + bh, m.c0.begin());
  if (!m.bf16) p.dst_layer.set_data_handle(h_seq);
  p.forward.execute(m.stream, p.forward_args);
  m.stream.wait();
  if (m.bf16) {
    for (std::size_t k = 0; k < rows * h; ++k) h_seq[k] = FromBf16(m.dst_layer_bf16[k]);
  }
  std::copy(h_seq + (rows - batch) * h, h_seq + rows * h, h_final);
  if (m.shape.has_cell_state()) std::copy(m.dst_iter_c.begin(), m.dst_iter_c.begin() + bh, c_final);
}

void OnednnRecurrent::Backward(const float* d_hidden, RecurrentGrads<float> grads, float* d_input, float* d_h0,
                               float* d_c0) {
  Impl& m = *impl_;
  assert(m.last != nullptr);
  Impl::Plan& p = *m.last;
  const int h = m.shape.hidden_size, in = m.shape.input_size, g = m.shape.gates();
  p.w_x_to_backward.execute(m.stream, m.user_w_x, p.w_x_backward);
  p.w_h_to_backward.execute(m.stream, m.user_w_h, p.w_h_backward);
  // oneDNN adds its weight gradients into these, so they start at zero.
  for (const memory& diff : {p.diff_w_x, p.diff_w_h, m.user_diff_bias}) {
    std::memset(diff.get_data_handle(), 0, diff.get_desc().get_size());
  }
  p.diff_dst_layer.set_data_handle(const_cast<float*>(d_hidden));
  p.diff_src_layer.set_data_handle(d_input != nullptr ? d_input : m.diff_src_layer.data());
  p.diff_src_iter.set_data_handle(d_h0 != nullptr ? d_h0 : m.diff_h0.data());
  if (m.shape.has_cell_state()) p.diff_src_iter_c.set_data_handle(d_c0 != nullptr ? d_c0 : m.diff_c0.data());
  p.backward.execute(m.stream, p.backward_args);
  if (p.diff_weights_reordered) {
    p.diff_w_x_back.execute(m.stream, p.diff_w_x, m.user_diff_w_x);
    p.diff_w_h_back.execute(m.stream, p.diff_w_h, m.user_diff_w_h);
  }
  m.stream.wait();
  PermuteGates(m.diff_w_x.data(), in, g, h, m.charlm_gate_of, grads.w_x, false, true);
  PermuteGates(m.diff_w_h.data(), h, g, h, m.charlm_gate_of, grads.w_h, false, true);
  const float* db = m.diff_bias.data();
  if (m.shape.cell != CellKind::kGru) {
    for (int j = 0; j < g * h; ++j) grads.b[j] += db[j];
    return;
  }
  // b_u = b_z + b_h_z and b_r = b_r + b_h_r reach both of charlm's biases; b_o is b_n, b_o' is b_h_n.
  for (int k = 0; k < 2; ++k) {
    const std::size_t to = static_cast<std::size_t>(m.charlm_gate_of[k]) * h;
    for (int j = 0; j < h; ++j) {
      grads.b[to + j] += db[k * h + j];
      grads.b_h[to + j] += db[k * h + j];
    }
  }
  for (int j = 0; j < h; ++j) {
    grads.b[2 * h + j] += db[2 * h + j];
    grads.b_h[2 * h + j] += db[3 * h + j];
  }
}

#else  // without oneDNN: OnednnRecurrentRefusal refuses every shape, so none is ever made

struct OnednnRecurrent::Impl {};

OnednnRecurrent::OnednnRecurrent(const RecurrentShape&, int, int, bool) {
  throw UserError("train.engine \"onednn\" needs oneDNN, but this charlm was built without it: install libdnnl-dev "
                  "and rebuild, or use train.engine \"charlm\"");
}
void OnednnRecurrent::Forward(const RecurrentInput<float>&, int, int, const RecurrentParams<float>&, const float*,
                              const float*, float*, float*, float*) {}
void OnednnRecurrent::Backward(const float*, RecurrentGrads<float>, float*, float*, float*) {}

#endif

OnednnRecurrent::~OnednnRecurrent() = default;
OnednnRecurrent::OnednnRecurrent(OnednnRecurrent&&) noexcept = default;
OnednnRecurrent& OnednnRecurrent::operator=(OnednnRecurrent&&) noexcept = default;

}  // namespace charlm
