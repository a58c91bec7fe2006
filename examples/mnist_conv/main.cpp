// Trains the conv net of pytorch/examples mnist/main.py on (Fashion-)MNIST with Tessera,
// on the CPU or a CUDA device, the way one would in PyTorch:
//   mnist_conv --epochs 1                      # Fashion-MNIST from dataset-fashion-mnist
//   mnist_conv --data data/mnist-digits --epochs 3
//   mnist_conv --device cuda --epochs 3 --save net.safetensors
//   mnist_conv --epochs 3 --save-every 500              # checkpoints in checkpoints/
//   mnist_conv --epochs 3 --resume checkpoints          # continues from the newest one
// SIGINT (Ctrl-C) or SIGTERM finishes the current step, writes a checkpoint and exits with
// status 130 / 143; --resume then continues bit for bit.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "net.hpp"
#include "tessera/amp/autocast.hpp"
#include "tessera/amp/grad_scaler.hpp"
#include "tessera/autograd/autograd.hpp"
#include "tessera/backend.hpp"
#include "tessera/data/dataloader.hpp"
#include "tessera/data/mnist.hpp"
#include "tessera/env/report.hpp"
#include "tessera/io/checkpoint.hpp"
#include "tessera/io/metrics.hpp"
#include "tessera/nn/serialize.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/lr_scheduler.hpp"
#include "tessera/optim/optimizer.hpp"
#include "tessera/parallel.hpp"
#include "tessera/random.hpp"

using namespace tessera;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kDefaultData = "/usr/share/datasets/fashion-mnist";

struct Args {
  std::string data = kDefaultData;
  std::string normalize = "auto";
  std::string device = "cpu";
  int epochs = 1;
  int64_t batch_size = 64;
  int64_t test_batch_size = 1000;
  double lr = -1;  // < 0: 2e-3 for adam/adamw, 1e-2 for sgd
  std::string optimizer = "adam";
  double momentum = 0.9;
  double weight_decay = -1;  // < 0: the optimizer's default
  std::string schedule = "step";
  double gamma = 0.7;
  uint64_t seed = 1;
  int64_t limit = 0;
  int64_t test_limit = 0;
  std::string save, load;
  int threads = 0;
  int64_t log_interval = 100;
  int64_t save_every = 0;
  int keep_last = 3;
  std::string checkpoint_dir = "checkpoints";
  std::string resume;
  std::string metrics;          // JSON lines of per-step and per-epoch metrics (io/metrics.hpp)
  std::string amp = "off";     // mixed precision: off, bf16 (autocast) or fp16 (autocast + GradScaler)
  int64_t crash_at_step = 0;  // testing: SIGKILL itself after this many steps
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

// One line of training progress: a bar on a terminal (rewritten with \r), else a plain line.
class Progress {
 public:
  Progress(int epoch, int epochs, int64_t steps, int64_t log_interval)
      : epoch_(epoch), epochs_(epochs), steps_(steps), log_interval_(std::max<int64_t>(1, log_interval)),
        tty_(::isatty(::fileno(stdout)) != 0), start_(Clock::now()), last_draw_(start_) {}

  // Whether update() at this step would print (so the caller fetches the loss only then).
  bool due(int64_t step) const {
    if (step == steps_) return true;
    if (tty_) return std::chrono::duration<double>(Clock::now() - last_draw_).count() >= 0.1;
    return step % log_interval_ == 0;
  }

  void update(int64_t step, int64_t images, double loss) {
    last_draw_ = Clock::now();
    double elapsed = seconds_since(start_);
    double rate = elapsed > 0 ? double(images) / elapsed : 0.0;
    double eta = step > 0 ? elapsed * double(steps_ - step) / double(step) : NAN;
    std::ostringstream os;
    os << "epoch " << epoch_ << "/" << epochs_ << " ";
    if (tty_) {
      constexpr int width = 30;
      int filled = steps_ > 0 ? int(width * step / steps_) : width;
      os << '[' << std::string(std::size_t(filled), '=') << (filled < width ? ">" : "")
         << std::string(std::size_t(std::max(0, width - filled - 1)), ' ') << "] ";
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, "%lld/%lld  loss %.4f  %.0f img/s  %s %s", (long long)step,
                  (long long)steps_, loss, rate, step == steps_ ? "time" : "ETA",
                  format_duration(step == steps_ ? elapsed : eta).c_str());
    os << buf;
    if (tty_) {
      std::cout << '\r' << os.str() << "\033[K" << (step == steps_ ? "\n" : "") << std::flush;
    } else {
      std::cout << os.str() << '\n' << std::flush;
    }
  }

  double elapsed() const { return seconds_since(start_); }

 private:
  int epoch_, epochs_;
  int64_t steps_, log_interval_;
  bool tty_;
  Clock::time_point start_, last_draw_;
};

struct EvalResult {
  double loss = 0;
  int64_t correct = 0, total = 0;
};

EvalResult evaluate(mnist_conv::Net& net, data::DataLoader& loader) {
  net.eval();
  NoGradGuard no_grad;
  Tensor loss_sum, correct;
  int64_t total = 0;
  for (const data::Batch& b : loader) {
    Tensor out = net.forward(b.data);
    Tensor l = nll_loss(out, b.target, Reduction::Sum);
    Tensor c = sum(eq(argmax(out, 1), b.target));
    if (!loss_sum.defined()) {
      loss_sum = l.to(kFloat64);
      correct = c;
    } else {
      loss_sum.add_(l);
      correct.add_(c);
    }
    total += b.target.size(0);
  }
  EvalResult r;
  r.total = total;
  if (total > 0) {
    r.loss = loss_sum.item<double>() / double(total);
    r.correct = correct.item<int64_t>();
  }
  return r;
}

// Normalisation constants: torchvision's Normalize values for the two datasets.
std::pair<float, float> normalization(const Args& a) {
  std::string mode = a.normalize;
  if (mode == "auto") {
    std::string lower = a.data;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    mode = lower.find("fashion") != std::string::npos ? "fashion-mnist" : "mnist";
  }
  if (mode == "fashion-mnist") return {0.2860f, 0.3530f};
  return {0.1307f, 0.3081f};
}

int run(const Args& a) {
  const Device device(a.device);
  backend_for(device);  // throws DeviceError with the reason when unusable
  if (a.threads > 0) set_num_threads(a.threads);

  data::MnistDataset train_set = [&] {
    try {
      return data::MnistDataset::from_dir(a.data, true);
    } catch (const IOError& e) {
      std::ostringstream os;
      os << e.what() << "\nmnist_conv: no training data in " << a.data << ". ";
      if (a.data == kDefaultData)
        os << "The default is Fashion-MNIST from the Debian package dataset-fashion-mnist: "
              "apt-get install dataset-fashion-mnist";
      else
        os << "Pass --data DIR with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] files.";
      throw IOError(os.str());
    }
  }();
  data::MnistDataset test_set = data::MnistDataset::from_dir(a.data, false);
  if (a.limit > 0) train_set = train_set.first(a.limit);
  if (a.test_limit > 0) test_set = test_set.first(a.test_limit);
  auto [mean, stdev] = normalization(a);

  auto train_opts = data::MnistLoaderOptions()
                        .batch_size(a.batch_size)
                        .shuffle(true)
                        .seed(a.seed)
                        .mean(mean)
                        .std(stdev)
                        .device(device);
  data::DataLoader train_loader(train_set, train_opts);
  auto test_opts = data::MnistLoaderOptions(train_opts).batch_size(a.test_batch_size).shuffle(false);
  data::DataLoader test_loader(test_set, test_opts);

  manual_seed(a.seed);
  auto net = std::make_shared<mnist_conv::Net>();
  if (!a.load.empty()) nn::load(*net, a.load);
  net->to(device);

  // Defaults measured on full Fashion-MNIST, batch 64, seed 1, 1 epoch: Adam lr 1e-3 88.98%,
  // lr 2e-3 89.46% test accuracy.
  const double lr = a.lr >= 0 ? a.lr : (a.optimizer == "sgd" ? 1e-2 : 2e-3);
  std::unique_ptr<optim::Optimizer> opt;
  if (a.optimizer == "adam" || a.optimizer == "adamw") {
    auto o = optim::AdamOptions(lr);
    if (a.optimizer == "adam") {
      o.weight_decay(a.weight_decay >= 0 ? a.weight_decay : 0.0);
      opt = std::make_unique<optim::Adam>(net->parameters(), o);
    } else {
      o.weight_decay(a.weight_decay >= 0 ? a.weight_decay : 1e-2);
      opt = std::make_unique<optim::AdamW>(net->parameters(), o);
    }
  } else {
    opt = std::make_unique<optim::SGD>(
        net->parameters(),
        optim::SGDOptions(lr).momentum(a.momentum).weight_decay(a.weight_decay >= 0 ? a.weight_decay : 0.0));
  }
  // Learning-rate schedule: cosine annealing to 0 over all training steps (stepped per
  // batch), or StepLR multiplying by gamma after every epoch (pytorch/examples' choice).
  const bool cosine = a.schedule == "cosine";
  std::unique_ptr<optim::LRScheduler> scheduler;
  if (cosine && a.epochs > 0)
    scheduler = std::make_unique<optim::CosineAnnealingLR>(*opt, int64_t(a.epochs) * train_loader.num_batches());
  else if (!cosine)
    scheduler = std::make_unique<optim::StepLR>(*opt, 1, a.gamma);

  // Everything a resumed run needs to continue bit for bit.
  io::Checkpoint checkpoint;
  // Mixed precision (off: a disabled guard and scaler, i.e. plain float32). bfloat16 has
  // float32's range, so only float16 needs loss scaling (PyTorch's recommendation too).
  const DType amp_dtype = a.amp == "fp16" ? kFloat16 : kBFloat16;
  amp::GradScaler scaler(amp::GradScalerOptions().enabled(a.amp == "fp16"));

  checkpoint.model(*net).optimizer(*opt).loader(train_loader).generator(default_generator()).scaler(scaler);
  if (scheduler) checkpoint.scheduler(*scheduler);
  int64_t global_step = 0;
  if (!a.resume.empty()) {
    std::string dir = a.resume;
    if (!io::is_checkpoint(dir)) {  // a run's folder: its newest finished checkpoint
      io::CheckpointManagerOptions o;
      o.keep_last = 0;
      if (auto last = io::CheckpointManager(dir, checkpoint, o).latest()) dir = *last;
    }
    const io::CheckpointInfo info = checkpoint.load(dir);
    global_step = info.step;
    std::cout << "resumed from " << dir << " at step " << global_step << " (epoch "
              << train_loader.epoch() + 1 << ")\n";
  }
  io::CheckpointManagerOptions manager_opts;
  manager_opts.save_every = a.save_every;
  manager_opts.keep_last = a.keep_last;
  std::unique_ptr<io::CheckpointManager> manager;
  auto save_checkpoint = [&] {
    if (!manager) manager = std::make_unique<io::CheckpointManager>(a.checkpoint_dir, checkpoint, manager_opts);
    const std::string dir = manager->save(global_step, {{"example", "mnist_conv"}});
    if (::isatty(::fileno(stdout))) std::cout << "\n";
    std::cout << "checkpoint " << dir << "\n" << std::flush;
  };
  io::InterruptGuard interrupt;
  auto stop_for_signal = [&] {
    std::cout << "mnist_conv: stopped by signal " << interrupt.requested() << " at step " << global_step
              << "; continue with --resume " << a.checkpoint_dir << "\n";
    return interrupt.exit_status();
  };
  std::ostringstream schedule;
  if (cosine) schedule << "cosine to 0";
  else schedule << "x" << a.gamma << " per epoch";

  {
    // One line from tessera-env: which GPU stack this process sees and whether it is usable.
    const env::Report& report = env::process_report();
    std::cout << "env: " << env::summary(report, env::check(report)) << "\n";
  }
  std::cout << "mnist_conv: " << train_set.size() << " training / " << test_set.size() << " test images from "
            << a.data << " (normalised with mean " << mean << ", std " << stdev << ")\n"
            << "device " << device << ", " << (a.threads > 0 ? a.threads : get_num_threads()) << " CPU threads, "
            << nn::parameter_count(*net) << " parameters, optimizer " << a.optimizer << " lr " << lr
            << " (" << schedule.str() << "), batch " << a.batch_size << ", seed " << a.seed
            << (a.amp == "off" ? "" : ", amp " + a.amp) << "\n";

  // --metrics: a fresh run starts the file, a resumed one appends to it.
  std::unique_ptr<io::MetricsWriter> metrics;
  if (!a.metrics.empty()) metrics = std::make_unique<io::MetricsWriter>(a.metrics, /*append=*/!a.resume.empty());

  const auto t_total = Clock::now();
  double train_seconds = 0;
  int64_t train_images = 0;
  auto save_due = [&] { return a.save_every > 0 && global_step % a.save_every == 0; };
  // The loader knows the epoch (0-based) and batch to continue from (a fresh run: 0, 0).
  for (int epoch = int(train_loader.epoch()) + 1; epoch <= a.epochs; ++epoch) {
    net->train();
    const int64_t first_batch = train_loader.start_batch();
    Progress progress(epoch, a.epochs, train_loader.num_batches(), a.log_interval);
    Tensor loss_sum;  // on the device; read only when the progress line is drawn
    Tensor epoch_loss_sum;  // the epoch's mean training loss, on the device until the epoch ends
    int64_t step = first_batch, images = 0, since_draw = 0;
    for (const data::Batch& b : train_loader) {
      opt->zero_grad();
      Tensor loss;
      {
        // --amp: the forward under autocast (convs and linears in the two-byte dtype,
        // log_softmax and the loss in float32); backward outside it.
        AutocastGuard autocast(device.type, amp_dtype, a.amp != "off");
        loss = nll_loss(net->forward(b.data), b.target);
      }
      scaler.scale(loss).backward();
      scaler.step(*opt);  // fp16: skipped when a gradient overflowed; otherwise opt->step()
      scaler.update();
      if (cosine) scheduler->step();
      ++global_step;
      if (a.crash_at_step > 0 && global_step == a.crash_at_step) ::raise(SIGKILL);  // testing: a hard crash
      {
        NoGradGuard no_grad;
        if (!loss_sum.defined() || since_draw == 0) loss_sum = loss.detach().to(kFloat64);
        else loss_sum.add_(loss.detach());
        if (!epoch_loss_sum.defined()) epoch_loss_sum = loss.detach().to(kFloat64);
        else epoch_loss_sum.add_(loss.detach());
      }
      ++step;
      ++since_draw;
      images += b.target.size(0);
      if (progress.due(step)) {
        const double mean_loss = loss_sum.item<double>() / double(since_draw);
        progress.update(step, images, mean_loss);
        if (metrics)
          metrics->write("step", {{"epoch", double(epoch)},
                                  {"step", double(global_step)},
                                  {"loss", mean_loss},
                                  {"lr", opt->lr()},
                                  {"images_per_s", double(images) / std::max(progress.elapsed(), 1e-9)}});
        since_draw = 0;
      }
      // A checkpoint after the epoch's last step waits for the end-of-epoch schedule step.
      if (step < train_loader.num_batches() && (save_due() || interrupt.requested())) {
        save_checkpoint();
        if (interrupt.requested()) return stop_for_signal();
      }
    }
    const double epoch_seconds = progress.elapsed();
    train_seconds += epoch_seconds;
    train_images += images;
    if (!cosine && scheduler) scheduler->step();
    if (save_due() || interrupt.requested()) {
      save_checkpoint();
      if (interrupt.requested()) return stop_for_signal();
    }
    const auto t_eval = Clock::now();
    EvalResult r = evaluate(*net, test_loader);
    const double train_loss =
        epoch_loss_sum.defined() ? epoch_loss_sum.item<double>() / double(step - first_batch) : std::nan("");
    std::printf("epoch %d: test loss %.4f, accuracy %lld/%lld (%.2f%%), train %.1f s, test %.1f s, train loss %.4f\n", epoch,
                r.loss, (long long)r.correct, (long long)r.total, r.total ? 100.0 * double(r.correct) / double(r.total) : 0.0,
                epoch_seconds, seconds_since(t_eval), train_loss);
    if (metrics)
      metrics->write("epoch", {{"epoch", double(epoch)},
                               {"step", double(global_step)},
                               {"train_loss", train_loss},
                               {"test_loss", r.loss},
                               {"test_accuracy", r.total ? double(r.correct) / double(r.total) : std::nan("")},
                               {"lr", opt->lr()},
                               {"train_seconds", epoch_seconds},
                               {"images_per_s", double(images) / std::max(epoch_seconds, 1e-9)}});
    if (scaler.is_enabled())
      std::printf("amp %s: loss scale %g, %lld steps skipped so far (inf/NaN gradients)\n", a.amp.c_str(),
                  scaler.get_scale(), (long long)scaler.skipped_steps());
  }
  if (a.epochs == 0) {
    EvalResult r = evaluate(*net, test_loader);
    std::printf("test loss %.4f, accuracy %lld/%lld (%.2f%%)\n", r.loss, (long long)r.correct, (long long)r.total,
                r.total ? 100.0 * double(r.correct) / double(r.total) : 0.0);
  }
  if (!a.save.empty()) {
    nn::save(*net, a.save);
    std::cout << "saved the weights to " << a.save << "\n";
  }
  std::printf("total time %.1f s", seconds_since(t_total));
  if (train_seconds > 0) std::printf(" (training: %.0f images/s)", double(train_images) / train_seconds);
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Train the pytorch/examples MNIST conv net with Tessera"};
  app.add_option("--data", a.data, "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]")
      ->capture_default_str();
  app.add_option("--normalize", a.normalize, "normalisation constants: auto (by the folder name), mnist, fashion-mnist")
      ->check(CLI::IsMember({"auto", "mnist", "fashion-mnist"}))
      ->capture_default_str();
  app.add_option("--device", a.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--epochs", a.epochs, "training epochs (0: only evaluate, e.g. with --load)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--batch-size", a.batch_size, "training batch size")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--test-batch-size", a.test_batch_size, "test batch size")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", a.lr, "learning rate (default: 2e-3 for adam/adamw, 1e-2 for sgd)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--optimizer", a.optimizer, "adam, adamw or sgd")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}))
      ->capture_default_str();
  app.add_option("--momentum", a.momentum, "SGD momentum")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--weight-decay", a.weight_decay, "weight decay (default: 0, AdamW 1e-2)");
  app.add_option("--schedule", a.schedule, "learning-rate schedule: cosine (to 0 over all steps) or step (x gamma per epoch)")
      ->check(CLI::IsMember({"cosine", "step"}))
      ->capture_default_str();
  app.add_option("--gamma", a.gamma, "learning-rate factor per epoch with --schedule step")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--seed", a.seed, "random seed (weights, shuffling, dropout)")->capture_default_str();
  app.add_option("--limit", a.limit, "train on the first N images only (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("--test-limit", a.test_limit, "test on the first N images only (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("--save", a.save, "write the trained weights to FILE (safetensors)");
  app.add_option("--load", a.load, "start from the weights in FILE (safetensors)")->check(CLI::ExistingFile);
  app.add_option("--threads", a.threads, "CPU threads (0: all cores or OMP_NUM_THREADS)")->check(CLI::NonNegativeNumber);
  app.add_option("--log-interval", a.log_interval, "steps between progress lines when stdout is not a terminal")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--save-every", a.save_every, "write a checkpoint every N training steps (0: only on SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--checkpoint-dir", a.checkpoint_dir, "folder of the run's checkpoints (one subfolder per step)")
      ->capture_default_str();
  app.add_option("--keep-last", a.keep_last, "finished checkpoints kept (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--resume", a.resume, "continue from a checkpoint folder, or the newest one in a run's folder")
      ->check(CLI::ExistingDirectory);
  app.add_option("--metrics", a.metrics,
                 "append per-step (every --log-interval steps) and per-epoch metrics to FILE as JSON lines "
                 "(scripts/plot-metrics draws them)");
  app.add_option("--amp", a.amp,
                 "mixed precision: off, bf16 (autocast) or fp16 (autocast and dynamic loss scaling)")
      ->check(CLI::IsMember({"off", "bf16", "fp16"}))
      ->capture_default_str();
  app.add_option("--crash-at-step", a.crash_at_step, "testing: kill the process with SIGKILL after step N")
      ->group("");
  CLI11_PARSE(app, argc, argv);

  try {
    return run(a);
  } catch (const tessera::Error& e) {
    if (::isatty(::fileno(stdout))) std::cout << std::endl;  // end an unfinished progress bar
    std::cerr << "mnist_conv: " << e.what() << "\n";
    return 1;
  }
}
