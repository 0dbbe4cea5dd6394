#pragma once
// Red messages under the controls: each control registers the plan fields it edits; a violation of
// the planner's rules shows next to the first control whose field it names.
#include <QLabel>
#include <QMap>
#include <QString>
#include <QVBoxLayout>
#include <QWidget>
#include <vector>

#include "paraplan/error.hpp"

namespace paraplan::gui {

class FieldErrors {
 public:
  // Wraps `control` with an (initially hidden) error label; `fields` are plan paths, e.g. "parallel.tp".
  QWidget* wrap(QWidget* control, const QStringList& fields) {
    auto* box = new QWidget;
    auto* lay = new QVBoxLayout(box);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->setSpacing(1);
    lay->addWidget(control);
    auto* label = new QLabel;
    label->setWordWrap(true);
    label->setStyleSheet("color: #b00020; font-size: 11px;");
    label->hide();
    lay->addWidget(label);
    for (const QString& f : fields) labels_.insert(f, label);
    all_.push_back(label);
    return box;
  }

  // Shows each violation under its field; returns those no control claimed.
  std::vector<planner::Violation> show(const std::vector<planner::Violation>& violations) {
    QMap<QLabel*, QStringList> text;
    std::vector<planner::Violation> unclaimed;
    for (const auto& v : violations) {
      QLabel* l = nullptr;
      const QString field = QString::fromStdString(v.field);
      for (auto it = labels_.begin(); it != labels_.end() && !l; ++it)
        if (field == it.key() || field.startsWith(it.key() + ".") || field.startsWith(it.key() + "["))
          l = it.value();
      if (l)
        text[l] << QString::fromStdString(v.to_string());
      else
        unclaimed.push_back(v);
    }
    for (QLabel* l : all_) {
      l->setVisible(text.contains(l));
      if (text.contains(l)) l->setText(text[l].join("\n"));
    }
    return unclaimed;
  }

 private:
  QMap<QString, QLabel*> labels_;
  std::vector<QLabel*> all_;
};

}  // namespace paraplan::gui
