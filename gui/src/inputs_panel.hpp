#pragma once
// Model, cluster and training controls.
#include <QWidget>

#include "field_errors.hpp"
#include "plan_session.hpp"

class QComboBox;
class QSpinBox;
class QDoubleSpinBox;
class QCheckBox;
class QGroupBox;
class QPushButton;

namespace paraplan::gui {

class InputsPanel : public QWidget {
  Q_OBJECT
 public:
  InputsPanel(PlanSession* session, QWidget* parent = nullptr);
  // Violations this panel did not place under one of its controls.
  std::vector<planner::Violation> showViolations(const std::vector<planner::Violation>& v) { return errors_.show(v); }

  QComboBox* modelCombo() const { return model_; }
  QSpinBox* gpusSpin() const { return gpus_; }
  QComboBox* gpuCombo() const { return gpu_; }
  QSpinBox* perNodeSpin() const { return per_node_; }
  QSpinBox* globalBatchSpin() const { return global_batch_; }
  QGroupBox* loraGroup() const { return lora_; }
  QComboBox* lossCombo() const { return loss_; }
  QComboBox* calibrationCombo() const { return calibration_; }

 public Q_SLOTS:
  void refresh();  // controls <- plan
  void openHfConfig(const QString& path);

 private:
  PlanSession* session_;
  FieldErrors errors_;
  QComboBox *model_, *gpu_, *calibration_, *precision_, *optimizer_, *recompute_, *offload_, *loss_, *lora_base_;
  QSpinBox *layers_, *hidden_, *heads_, *kv_heads_, *head_dim_, *ffn_, *vocab_;
  QSpinBox *gpus_, *per_node_, *seq_, *micro_, *global_batch_, *lora_rank_;
  QDoubleSpinBox* lora_alpha_;
  QCheckBox* flash_;
  QCheckBox* targets_[7];
  QGroupBox* lora_;
  QPushButton* hf_;
};

}  // namespace paraplan::gui
