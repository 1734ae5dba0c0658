// perfsuite `native`: the article's Rust/tch-rs training loop, translated to C++ on LibTorch.
//
// The names follow the article: a `Memory` tensor store, `Linear` layers that hold the
// addresses of their parameters by name, a `Compute` interface with `forward`, `get_batches`
// by index_select + narrow, `cross_entropy`/`mse`, SGD with momentum and `accuracy`.
// Two departures, both for a fair comparison: the sample order of an epoch is the harness's
// permutation (handed in, so every implementation sees the same batches) and the momentum
// velocities persist across steps (the rule the article meant; its listing rebuilt them).
//
// `Trainer::train_epoch` runs a whole epoch with the GIL released. Every phase is its own
// non-inlined function (phase_batching, phase_forward, phase_loss, phase_backward,
// phase_step), so native stack samples name the phase, and each is timed with
// std::chrono::steady_clock. The epoch returns (steps x 5 seconds, per-step losses).

#include <torch/extension.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace perfsuite_native {

using torch::Tensor;
using Clock = std::chrono::steady_clock;

constexpr int kPhases = 5;

// The tensor store: every parameter lives here and is addressed by its position.
class Memory {
 public:
  size_t push(Tensor value) {
    values_.push_back(value);
    velocity_.push_back(torch::zeros_like(value));
    return values_.size() - 1;
  }

  // A new uniform [0, 1) tensor (the article's init), stored; returns its address.
  size_t new_push(at::IntArrayRef size, bool requires_grad) {
    return push(torch::rand(size).requires_grad_(requires_grad));
  }

  const Tensor& get(size_t addr) const { return values_.at(addr); }

  // Plain gradient descent: p -= lr * g, then zero the gradient.
  void apply_grads_sgd(double learning_rate) {
    torch::NoGradGuard no_grad;
    for (auto& t : values_) {
      t.sub_(t.grad(), learning_rate);
      t.mutable_grad().zero_();
    }
  }

  // Momentum in EMA form with persistent velocities: v = beta v + (1 - beta) g, p -= lr v.
  void apply_grads_sgd_momentum(double learning_rate, double beta) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < values_.size(); ++i) {
      Tensor& t = values_[i];
      velocity_[i].mul_(beta).add_(t.grad(), 1 - beta);
      t.sub_(velocity_[i], learning_rate);
      t.mutable_grad().zero_();
    }
  }

 private:
  std::vector<Tensor> values_;
  std::vector<Tensor> velocity_;
};

// Anything with a forward pass over parameters held in a Memory.
class Compute {
 public:
  virtual ~Compute() = default;
  virtual Tensor forward(const Memory& mem, const Tensor& input) const = 0;
};

// input.matmul(W) + b with W (in x out) and b (1 x out) held in the store by name.
class Linear : public Compute {
 public:
  Linear(Memory& mem, const Tensor& w, const Tensor& b) {
    params_["W"] = mem.push(w.clone().requires_grad_(true));
    params_["b"] = mem.push(b.clone().requires_grad_(true));
  }

  Tensor forward(const Memory& mem, const Tensor& input) const override {
    const Tensor& w = mem.get(params_.at("W"));
    const Tensor& b = mem.get(params_.at("b"));
    return input.matmul(w) + b;
  }

 private:
  std::map<std::string, size_t> params_;
};

// The article's model: Linear -> ReLU -> Linear. Initial parameters come in nn.Linear
// layout (out x in) and are stored transposed (in x out), as the article stores W.
class MyModel : public Compute {
 public:
  MyModel(Memory& mem, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2)
      : l1_(mem, w1.t(), b1.reshape({1, -1})), l2_(mem, w2.t(), b2.reshape({1, -1})) {}

  Tensor forward(const Memory& mem, const Tensor& input) const override {
    Tensor o = l1_.forward(mem, input);
    o = o.relu();
    return l2_.forward(mem, o);
  }

 private:
  Linear l1_;
  Linear l2_;
};

Tensor mse(const Tensor& target, const Tensor& pred) {
  return (torch::one_hot(target, pred.size(-1)).to(pred.scalar_type()) - pred).square().mean();
}

Tensor cross_entropy(const Tensor& target, const Tensor& pred) {
  return torch::nll_loss(pred.log_softmax(-1), target);
}

// Share of rows whose arg-max matches target.
double accuracy(const Tensor& target, const Tensor& pred) {
  return (pred.argmax(1) == target).to(torch::kDouble).mean().item<double>();
}

// The article's get_batches: reorder the whole set once, then hand out narrow views.
class Batches {
 public:
  Batches(const Tensor& x, const Tensor& y, int64_t batch_size, const Tensor& indices)
      : x_(x.index_select(0, indices)), y_(y.index_select(0, indices)),
        rows_(x.size(0)), batch_size_(batch_size) {}

  bool next(Tensor& bx, Tensor& by) {
    if (start_ >= rows_) return false;
    int64_t n = std::min(batch_size_, rows_ - start_);
    bx = x_.narrow(0, start_, n);
    by = y_.narrow(0, start_, n);
    start_ += n;
    return true;
  }

  int64_t steps() const { return (rows_ + batch_size_ - 1) / batch_size_; }

 private:
  Tensor x_, y_;
  int64_t rows_;
  int64_t batch_size_;
  int64_t start_ = 0;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// --- the five phases, one non-inlined function each -----------------------------------

__attribute__((noinline)) bool phase_batching(Batches& batches, Tensor& bx, Tensor& by) {
  return batches.next(bx, by);
}

__attribute__((noinline)) Tensor phase_forward(const Compute& model, const Memory& mem, const Tensor& x) {
  return model.forward(mem, x);
}

__attribute__((noinline)) Tensor phase_loss(bool use_mse, const Tensor& logits, const Tensor& y) {
  return use_mse ? mse(y, logits) : cross_entropy(y, logits);
}

__attribute__((noinline)) void phase_backward(const Tensor& loss) {
  loss.backward();
}

__attribute__((noinline)) void phase_step(Memory& mem, double lr, double beta) {
  mem.apply_grads_sgd_momentum(lr, beta);
}

// -----------------------------------------------------------------------------------------

// Holds the store, the model and the preprocessed training set between epochs.
class Trainer {
 public:
  Trainer(Tensor x, Tensor y, Tensor w1, Tensor b1, Tensor w2, Tensor b2, int64_t batch_size, double lr,
          double momentum, const std::string& loss)
      : x_(std::move(x)), y_(std::move(y)), model_(mem_, w1, b1, w2, b2), batch_size_(batch_size), lr_(lr),
        momentum_(momentum), use_mse_(loss == "mse") {
    TORCH_CHECK(loss == "ce" || loss == "mse", "loss must be 'ce' or 'mse', got '", loss, "'");
    TORCH_CHECK(batch_size_ >= 1, "batch_size must be at least 1");
    TORCH_CHECK(x_.dim() == 2 && y_.dim() == 1 && x_.size(0) == y_.size(0), "x must be N x D and y N");
  }

  // One epoch in the order `indices` gives: (steps x 5 phase seconds as float64, losses).
  std::pair<Tensor, Tensor> train_epoch(const Tensor& indices) {
    TORCH_CHECK(indices.dim() == 1 && indices.size(0) == x_.size(0), "indices must be a permutation of the rows");
    std::vector<double> seconds;
    std::vector<Tensor> losses;
    run_epoch(indices, seconds, losses);
    const int64_t steps = static_cast<int64_t>(losses.size());
    Tensor phases = torch::from_blob(seconds.data(), {steps, kPhases}, torch::kDouble).clone();
    Tensor loss_values = steps ? torch::stack(losses) : torch::empty({0});
    return {phases, loss_values};
  }

  // Logits for preprocessed inputs, without gradients.
  Tensor predict(const Tensor& x) const {
    torch::NoGradGuard no_grad;
    return model_.forward(mem_, x);
  }

 private:
  void run_epoch(const Tensor& indices, std::vector<double>& seconds, std::vector<Tensor>& losses) {
    Tensor bx, by;
    auto t0 = Clock::now();
    auto batches = std::make_unique<Batches>(x_, y_, batch_size_, indices);
    double pending = seconds_since(t0);
    seconds.reserve(static_cast<size_t>(batches->steps() * kPhases));
    losses.reserve(static_cast<size_t>(batches->steps()));
    while (true) {
      t0 = Clock::now();
      if (!phase_batching(*batches, bx, by)) {
        // Releasing the shuffled copy (and the last batch's views of it) is batching too.
        bx = Tensor();
        by = Tensor();
        batches.reset();
        break;
      }
      auto t1 = Clock::now();
      Tensor logits = phase_forward(model_, mem_, bx);
      auto t2 = Clock::now();
      Tensor loss = phase_loss(use_mse_, logits, by);
      auto t3 = Clock::now();
      phase_backward(loss);
      auto t4 = Clock::now();
      phase_step(mem_, lr_, momentum_);
      auto t5 = Clock::now();
      using D = std::chrono::duration<double>;
      seconds.insert(seconds.end(), {pending + D(t1 - t0).count(), D(t2 - t1).count(), D(t3 - t2).count(),
                                     D(t4 - t3).count(), D(t5 - t4).count()});
      pending = 0.0;
      losses.push_back(loss.detach());
    }
    // The final, empty request for a batch and the release of the epoch's shuffled copy
    // belong to batching, as in the Python harness.
    if (!seconds.empty()) seconds[seconds.size() - kPhases] += seconds_since(t0);
  }

  Tensor x_, y_;
  Memory mem_;
  MyModel model_;
  int64_t batch_size_;
  double lr_;
  double momentum_;
  bool use_mse_;
};

}  // namespace perfsuite_native

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using perfsuite_native::Trainer;
  m.doc() = "perfsuite native: the article's tch-rs training loop in C++ on LibTorch";
  py::class_<Trainer>(m, "Trainer")
      .def(py::init<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor, int64_t,
                    double, double, const std::string&>(),
           py::arg("x"), py::arg("y"), py::arg("w1"), py::arg("b1"), py::arg("w2"), py::arg("b2"),
           py::arg("batch_size"), py::arg("lr"), py::arg("momentum"), py::arg("loss"))
      .def("train_epoch", &Trainer::train_epoch, py::arg("indices"), py::call_guard<py::gil_scoped_release>(),
           "Run one epoch with the GIL released; returns (steps x 5 phase seconds, per-step losses).")
      .def("predict", &Trainer::predict, py::arg("x"), py::call_guard<py::gil_scoped_release>(),
           "Logits for preprocessed inputs (N x 784), without gradients.");
  m.def("accuracy", &perfsuite_native::accuracy, py::arg("target"), py::arg("pred"),
        "Share of rows whose arg-max matches target.");
}
