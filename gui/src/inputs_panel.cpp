#include "inputs_panel.hpp"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSpinBox>
#include <nlohmann/json.hpp>

#include "gui_format.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/calibration.hpp"
#include "paraplan/presets.hpp"

namespace paraplan::gui {

using namespace planner;

namespace {

QSpinBox* spin(int lo, int hi, const QString& suffix = {}) {
  auto* s = new QSpinBox;
  s->setRange(lo, hi);
  s->setSuffix(suffix);
  s->setKeyboardTracking(false);  // update on enter / focus out, not on every digit
  s->setGroupSeparatorShown(true);
  return s;
}

template <class E>
QComboBox* combo(std::initializer_list<std::pair<const char*, E>> items) {
  auto* c = new QComboBox;
  for (const auto& [label, value] : items) c->addItem(label, static_cast<int>(value));
  return c;
}

void select(QComboBox* c, int value) {
  const QSignalBlocker b(c);
  c->setCurrentIndex(std::max(0, c->findData(value)));
}

}  // namespace

InputsPanel::InputsPanel(PlanSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  auto* root = new QVBoxLayout(this);
  root->setContentsMargins(0, 0, 0, 0);

  // --- model ---
  auto* mbox = new QGroupBox("Model");
  auto* mform = new QFormLayout(mbox);
  model_ = new QComboBox;
  for (const PresetInfo& p : model_presets()) model_->addItem(QString::fromStdString(p.id + "  —  " + p.name), QString::fromStdString(p.id));
  model_->addItem("custom (edited dimensions)", QString());
  model_->setToolTip("A preset (paraplan models), or edit the dimensions below, or open a Hugging Face config.json");
  hf_ = new QPushButton("HF config…");
  hf_->setToolTip("Read the model from a Hugging Face config.json (Llama, Mistral, Qwen2, Mixtral, GPT-2, DeepSeek-V3)");
  auto* mrow = new QWidget;
  auto* mlay = new QHBoxLayout(mrow);
  mlay->setContentsMargins(0, 0, 0, 0);
  mlay->addWidget(model_, 1);
  mlay->addWidget(hf_);
  mform->addRow("preset", errors_.wrap(mrow, {"model"}));
  layers_ = spin(1, 1 << 16);
  hidden_ = spin(1, 1 << 20);
  heads_ = spin(1, 1 << 16);
  kv_heads_ = spin(1, 1 << 16);
  head_dim_ = spin(1, 1 << 16);
  ffn_ = spin(1, 1 << 22);
  vocab_ = spin(1, 1 << 24);
  // Two controls to a row: the whole panel, plan included, fits a 1000-pixel-high window.
  auto two = [](QWidget* a, QWidget* b) {
    auto* w = new QWidget;
    auto* l = new QHBoxLayout(w);
    l->setContentsMargins(0, 0, 0, 0);
    l->addWidget(a, 1);
    l->addWidget(b, 1);
    return w;
  };
  mform->addRow("layers / hidden", errors_.wrap(two(layers_, hidden_), {"model.layers", "model.hidden"}));
  mform->addRow("heads / kv heads", errors_.wrap(two(heads_, kv_heads_), {"model.heads", "model.kv_heads"}));
  mform->addRow("head dim / ffn", errors_.wrap(two(head_dim_, ffn_), {"model.head_dim", "model.ffn_hidden"}));
  mform->addRow("vocabulary", errors_.wrap(vocab_, {"model.vocab"}));
  root->addWidget(mbox);

  // --- cluster ---
  auto* cbox = new QGroupBox("Cluster");
  auto* cform = new QFormLayout(cbox);
  gpu_ = new QComboBox;
  for (const PresetInfo& p : hardware_presets()) gpu_->addItem(QString::fromStdString(p.name), QString::fromStdString(p.id));
  gpus_ = spin(1, 1 << 20);
  setCountSuffix(gpus_, " GPU", " GPUs");
  per_node_ = spin(1, 1024, " per node");
  // The time model's profile (the CLI's --calibration): the datasheet values or a built-in profile, each
  // named with the GPU its rows were of; a plan opened with a profile file lists that file too (refresh).
  calibration_ = new QComboBox;
  calibration_->addItem("none (datasheet values)", QString("none"));
  for (const std::string& name : builtin_calibration_names()) {
    if (name == "none") continue;
    const std::string device = builtin_calibration(name).device;
    calibration_->addItem(QString::fromStdString(name + (device.empty() ? "" : " (fitted on " + device + ")")),
                          QString::fromStdString(name));
  }
  calibration_->setToolTip("The time model's calibration profile: which efficiencies and overheads step times use "
                           "(docs/calibration.md); `paraplan validate` says how far each is off on published runs");
  cform->addRow("GPU", errors_.wrap(gpu_, {"cluster.gpu"}));
  cform->addRow("count / node", errors_.wrap(two(gpus_, per_node_), {"cluster.gpus", "cluster.gpus_per_node"}));
  cform->addRow("calibration", errors_.wrap(calibration_, {"cluster.calibration"}));
  root->addWidget(cbox);

  // --- training ---
  auto* tbox = new QGroupBox("Training");
  auto* tform = new QFormLayout(tbox);
  seq_ = spin(1, 1 << 24, " tokens");
  micro_ = spin(1, 1 << 16, " seq");
  global_batch_ = spin(1, 1 << 24, " seq");
  precision_ = combo<Precision>({{"bf16 (mixed)", Precision::bf16}, {"fp16 (mixed)", Precision::fp16},
                                 {"fp32", Precision::fp32}, {"fp8 GEMMs", Precision::fp8}});
  optimizer_ = combo<Optimizer>({{"AdamW", Optimizer::adamw}, {"Adam", Optimizer::adam}, {"SGD + momentum", Optimizer::sgd_momentum},
                                 {"SGD", Optimizer::sgd}, {"8-bit Adam", Optimizer::adam8bit}});
  recompute_ = combo<Recompute>({{"none", Recompute::none}, {"selective (attention)", Recompute::selective},
                                 {"full (every layer)", Recompute::full}});
  offload_ = combo<Offload>({{"none", Offload::none}, {"optimizer → host", Offload::optimizer},
                             {"optimizer + params → host", Offload::optimizer_params}});
  // Transformer Engine's fused loss keeps the 16-bit logits only (Megatron-Core, the Megatron-Bridge default).
  loss_ = combo<CrossEntropy>({{"unfused (fp32 logits)", CrossEntropy::unfused},
                               {"Transformer Engine fused", CrossEntropy::te}});
  flash_ = new QCheckBox("flash attention");
  tform->addRow("sequence", errors_.wrap(seq_, {"training.seq_len"}));
  tform->addRow("micro / global batch",
                errors_.wrap(two(micro_, global_batch_), {"training.micro_batch", "training.global_batch"}));
  tform->addRow("precision / optimizer", errors_.wrap(two(precision_, optimizer_),
                                                      {"training.precision", "training.grad_dtype", "training.optimizer"}));
  tform->addRow("recompute", errors_.wrap(two(recompute_, flash_), {"training.recompute", "training.flash_attention"}));
  tform->addRow("offload", errors_.wrap(offload_, {"training.offload"}));
  tform->addRow("cross entropy", errors_.wrap(loss_, {"training.cross_entropy"}));
  lora_ = new QGroupBox("LoRA (freeze the base, train adapters)");
  lora_->setCheckable(true);
  auto* lform = new QFormLayout(lora_);
  lora_rank_ = spin(1, 1 << 14);
  lora_alpha_ = new QDoubleSpinBox;
  lora_alpha_->setRange(0.001, 1e6);
  lora_alpha_->setKeyboardTracking(false);
  lora_base_ = combo<LoraBase>({{"bf16 base (LoRA)", LoraBase::bf16}, {"NF4 base (QLoRA)", LoraBase::nf4}, {"fp32 base", LoraBase::fp32}});
  auto* targets = new QWidget;
  auto* tgrid = new QHBoxLayout(targets);
  tgrid->setContentsMargins(0, 0, 0, 0);
  for (int i = 0; i < 7; ++i) {
    targets_[i] = new QCheckBox(QString(kLoraTargetNames[i]).replace("_proj", ""));
    targets_[i]->setToolTip(kLoraTargetNames[i]);
    tgrid->addWidget(targets_[i]);
  }
  lform->addRow("rank r / alpha", [&] {
    auto* w = new QWidget;
    auto* l = new QHBoxLayout(w);
    l->setContentsMargins(0, 0, 0, 0);
    l->addWidget(lora_rank_);
    l->addWidget(lora_alpha_);
    return w;
  }());
  lform->addRow("targets", errors_.wrap(targets, {"training.lora"}));
  lform->addRow("base", lora_base_);
  tform->addRow(lora_);
  root->addWidget(tbox);
  root->addStretch(1);

  // --- wiring: every control edits the plan through the session ---
  auto dims = [this](auto setter) {
    return [this, setter](int v) {
      session_->update([&](Plan& p) {
        setter(p.model, v);
        p.model.preset.clear();
        p.model.hf_config.clear();
        if (p.model.name.find("custom") == std::string::npos) p.model.name += " (custom)";
      });
    };
  };
  connect(layers_, &QSpinBox::valueChanged, this, dims([](ModelSpec& m, int v) { m.layers = v; }));
  connect(hidden_, &QSpinBox::valueChanged, this, dims([](ModelSpec& m, int v) { m.hidden = v; }));
  connect(heads_, &QSpinBox::valueChanged, this, dims([](ModelSpec& m, int v) { m.heads = v; }));
  connect(kv_heads_, &QSpinBox::valueChanged, this, dims([](ModelSpec& m, int v) { m.kv_heads = v; }));
  connect(head_dim_, &QSpinBox::valueChanged, this, dims([](ModelSpec& m, int v) { m.head_dim = v; }));
  connect(ffn_, &QSpinBox::valueChanged, this, dims([](ModelSpec& m, int v) { m.ffn_hidden = v; }));
  connect(vocab_, &QSpinBox::valueChanged, this, dims([](ModelSpec& m, int v) { m.vocab = v; }));
  connect(model_, &QComboBox::currentIndexChanged, this, [this] {
    const QString id = model_->currentData().toString();
    if (id.isEmpty()) return;  // "custom": edit the dimensions
    session_->update([&](Plan& p) { p.model = model_preset(id.toStdString()); });
  });
  connect(hf_, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, "Hugging Face config.json", {}, "config.json (*.json)");
    if (!path.isEmpty()) openHfConfig(path);
  });
  connect(gpu_, &QComboBox::currentIndexChanged, this, [this] {
    const std::string id = gpu_->currentData().toString().toStdString();
    session_->update([&](Plan& p) {
      // A node size the user left at the old GPU's default follows the new one's (an NVL72 rack holds
      // more than a DGX node: default_gpus_per_node); one the user chose stays.
      const bool default_nodes = p.cluster.gpus_per_node == default_gpus_per_node(p.cluster.gpu, p.cluster.gpus);
      p.cluster.gpu = hardware_preset(id);
      if (default_nodes) p.cluster.gpus_per_node = default_gpus_per_node(p.cluster.gpu, p.cluster.gpus);
      p.cluster.calibration = builtin_calibration(p.cluster.gpu.is_cpu ? "none" : "published");
      if (p.cluster.gpu.is_cpu) p.training.precision = Precision::fp32;
    });
  });
  connect(calibration_, &QComboBox::currentIndexChanged, this, [this] {
    const std::string choice = calibration_->currentData().toString().toStdString();
    try {
      const Calibration c = load_calibration(choice);
      session_->update([&](Plan& p) { p.cluster.calibration = c; });
    } catch (const std::exception& e) {  // a profile file that has gone since the plan was opened
      QMessageBox::warning(this, "Calibration", QString::fromStdString(e.what()));
      refresh();
    }
  });
  connect(gpus_, &QSpinBox::valueChanged, this, [this](int v) { session_->update([&](Plan& p) { p.cluster.gpus = v; }); });
  connect(per_node_, &QSpinBox::valueChanged, this, [this](int v) { session_->update([&](Plan& p) { p.cluster.gpus_per_node = v; }); });
  connect(seq_, &QSpinBox::valueChanged, this, [this](int v) { session_->update([&](Plan& p) { p.training.seq_len = v; }); });
  connect(micro_, &QSpinBox::valueChanged, this, [this](int v) { session_->update([&](Plan& p) { p.training.micro_batch = v; }); });
  connect(global_batch_, &QSpinBox::valueChanged, this, [this](int v) { session_->update([&](Plan& p) { p.training.global_batch = v; }); });
  auto enum_combo = [this](QComboBox* c, auto apply) {
    connect(c, &QComboBox::currentIndexChanged, this, [this, c, apply] {
      const int v = c->currentData().toInt();
      session_->update([&](Plan& p) { apply(p, v); });
    });
  };
  enum_combo(precision_, [](Plan& p, int v) {
    p.training.precision = static_cast<Precision>(v);
    if (p.training.precision == Precision::fp32) p.training.grad_dtype = GradDtype::fp32;
  });
  enum_combo(optimizer_, [](Plan& p, int v) { p.training.optimizer = static_cast<Optimizer>(v); });
  enum_combo(recompute_, [](Plan& p, int v) { p.training.recompute = static_cast<Recompute>(v); });
  enum_combo(offload_, [](Plan& p, int v) { p.training.offload = static_cast<Offload>(v); });
  enum_combo(loss_, [](Plan& p, int v) { p.training.cross_entropy = static_cast<CrossEntropy>(v); });
  enum_combo(lora_base_, [](Plan& p, int v) {
    if (p.training.lora) p.training.lora->base = static_cast<LoraBase>(v);
  });
  connect(flash_, &QCheckBox::toggled, this, [this](bool on) { session_->update([&](Plan& p) { p.training.flash_attention = on; }); });
  connect(lora_, &QGroupBox::toggled, this, [this](bool on) {
    session_->update([&](Plan& p) {
      if (!on) p.training.lora.reset();
      else if (!p.training.lora) p.training.lora = LoraSpec{};
    });
  });
  connect(lora_rank_, &QSpinBox::valueChanged, this, [this](int v) {
    session_->update([&](Plan& p) {
      if (p.training.lora) p.training.lora->rank = v;
    });
  });
  connect(lora_alpha_, &QDoubleSpinBox::valueChanged, this, [this](double v) {
    session_->update([&](Plan& p) {
      if (p.training.lora) p.training.lora->alpha = v;
    });
  });
  for (int i = 0; i < 7; ++i)
    connect(targets_[i], &QCheckBox::toggled, this, [this, i](bool on) {
      session_->update([&](Plan& p) {
        if (!p.training.lora) return;
        if (on) p.training.lora->targets |= 1u << i;
        else p.training.lora->targets &= ~(1u << i);
      });
    });
  connect(session_, &PlanSession::planChanged, this, &InputsPanel::refresh);
  refresh();
}

void InputsPanel::openHfConfig(const QString& path) {
  try {
    Violations errors;
    ModelSpec m = model_from_json(nlohmann::json{{"hf_config", path.toStdString()}}, "model", ".", errors);
    errors.throw_if_any();
    session_->update([&](Plan& p) { p.model = m; });
  } catch (const std::exception& e) {
    QMessageBox::warning(this, "Hugging Face config", QString::fromStdString(e.what()));
  }
}

void InputsPanel::refresh() {
  const Plan& p = session_->plan();
  auto set = [](QSpinBox* s, long long v) {
    const QSignalBlocker b(s);
    s->setValue(static_cast<int>(v));
    syncCountSuffix(s);  // "1 GPU", "8 GPUs": valueChanged is blocked here
  };
  {
    const QSignalBlocker b(model_);
    const int i = model_->findData(QString::fromStdString(p.model.preset));
    model_->setCurrentIndex(i >= 0 && !p.model.preset.empty() ? i : model_->count() - 1);
  }
  set(layers_, p.model.layers);
  set(hidden_, p.model.hidden);
  set(heads_, p.model.heads);
  set(kv_heads_, p.model.kv_heads);
  set(head_dim_, p.model.head_dim);
  set(ffn_, p.model.ffn_hidden);
  set(vocab_, p.model.vocab);
  {
    const QSignalBlocker b(gpu_);
    gpu_->setCurrentIndex(std::max(0, gpu_->findData(QString::fromStdString(p.cluster.gpu.id))));
  }
  {
    const QSignalBlocker b(calibration_);
    // A built-in profile by its name; a profile file by its path, added to the list the first time.
    const std::string& origin = p.cluster.calibration.origin;
    const QString key = QString::fromStdString(origin.empty() ? p.cluster.calibration.name : origin);
    int i = calibration_->findData(key);
    if (i < 0) {  // the file's name in the list (a long path would widen the panel), its path as the tip
      calibration_->addItem(QString::fromStdString(p.cluster.calibration.name) + " (file " +
                                QFileInfo(QString::fromStdString(origin)).fileName() + ")",
                            key);
      i = calibration_->count() - 1;
      calibration_->setItemData(i, key, Qt::ToolTipRole);
    }
    calibration_->setCurrentIndex(i);
  }
  set(gpus_, p.cluster.gpus);
  set(per_node_, p.cluster.gpus_per_node);
  set(seq_, p.training.seq_len);
  set(micro_, p.training.micro_batch);
  set(global_batch_, p.training.global_batch);
  select(precision_, static_cast<int>(p.training.precision));
  select(optimizer_, static_cast<int>(p.training.optimizer));
  select(recompute_, static_cast<int>(p.training.recompute));
  select(offload_, static_cast<int>(p.training.offload));
  select(loss_, static_cast<int>(p.training.cross_entropy));
  {
    const QSignalBlocker b(flash_);
    flash_->setChecked(p.training.flash_attention);
  }
  {
    const QSignalBlocker b(lora_);
    lora_->setChecked(p.training.lora.has_value());
  }
  const LoraSpec l = p.training.lora.value_or(LoraSpec{});
  set(lora_rank_, l.rank);
  {
    const QSignalBlocker b(lora_alpha_);
    lora_alpha_->setValue(l.alpha);
  }
  select(lora_base_, static_cast<int>(l.base));
  for (int i = 0; i < 7; ++i) {
    const QSignalBlocker b(targets_[i]);
    targets_[i]->setChecked(l.targets & (1u << i));
  }
}

}  // namespace paraplan::gui
