#include "json_reader.hpp"

#include <cmath>

namespace paraplan::planner::detail {

std::string show(const json& v) {
  if (v.is_number_float() && std::isnan(v.get<double>())) return "NaN";  // dump() would print null
  if (v.is_number_float() && std::isinf(v.get<double>())) return v.get<double>() > 0 ? "Infinity" : "-Infinity";
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

ObjectReader::ObjectReader(const json& obj, std::string path, Violations& errors, std::vector<std::string> known)
    : obj_(&obj), path_(std::move(path)), errors_(errors) {
  if (!obj.is_object()) {
    errors_.add(path_.empty() ? "(document)" : path_, show(obj), "must be a JSON object");
    obj_ = nullptr;
    return;
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const auto& k : known) ok = ok || k == it.key();
    if (ok) continue;
    const std::string guess = closest_match(it.key(), known);
    std::string rule = "unknown field";
    if (!guess.empty()) rule += " (did you mean " + field(guess.c_str()) + "?)";
    else rule += "; known fields: " + join(known);
    errors_.add(field(it.key().c_str()), "", rule);
  }
}

bool ObjectReader::has(const char* key) const { return raw(key) != nullptr; }

const json* ObjectReader::raw(const char* key) const {
  if (!obj_) return nullptr;
  auto it = obj_->find(key);
  return it == obj_->end() ? nullptr : &*it;
}

std::string ObjectReader::join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string ObjectReader::hint(const json& v, const std::vector<std::string>& candidates) {
  if (!v.is_string()) return "";
  const std::string g = closest_match(v.get<std::string>(), candidates);
  return g.empty() ? "" : " (did you mean \"" + g + "\"?)";
}

std::optional<int64_t> read_integer(const json& v, const std::string& field, int64_t min, int64_t max,
                                    Violations& errors) {
  int64_t x = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      errors.add(field, show(v), "must be <= " + std::to_string(max));
      return std::nullopt;
    }
    x = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9e15) {
    x = static_cast<int64_t>(v.get<double>());  // 1e6 is a fine way to write an integer
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) {
    errors.add(field, show(v), v.get<double>() < 0 ? "must be >= " + std::to_string(min)
                                                   : "must be <= " + std::to_string(max));
    return std::nullopt;
  } else {
    errors.add(field, show(v), "must be an integer");
    return std::nullopt;
  }
  if (x < min || x > max) {
    // A short range is stated whole (zero: 0..3); a long one is a sanity bound, stated on the side broken.
    std::string rule = x < min ? "must be >= " + std::to_string(min) : "must be <= " + std::to_string(max);
    if (max - min <= 100) rule = "must be between " + std::to_string(min) + " and " + std::to_string(max);
    errors.add(field, show(v), rule);
    return std::nullopt;
  }
  return x;
}

int64_t ObjectReader::integer(const char* key, int64_t fallback, int64_t min, int64_t max) {
  const json* v = raw(key);
  if (!v || v->is_null()) return fallback;
  return read_integer(*v, field(key), min, max, errors_).value_or(fallback);
}

double ObjectReader::number(const char* key, double fallback, double min, double max) {
  const json* v = raw(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_number()) {
    errors_.add(field(key), show(*v), "must be a number");
    return fallback;
  }
  const double x = v->get<double>();
  if (!(x >= min && x <= max)) {
    errors_.add(field(key), show(*v), "must be between " + show(json(min)) + " and " + show(json(max)));
    return fallback;
  }
  return x;
}

bool ObjectReader::boolean(const char* key, bool fallback) {
  const json* v = raw(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_boolean()) {
    errors_.add(field(key), show(*v), "must be true or false");
    return fallback;
  }
  return v->get<bool>();
}

std::string ObjectReader::string(const char* key, const std::string& fallback) {
  const json* v = raw(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_string()) {
    errors_.add(field(key), show(*v), "must be a string");
    return fallback;
  }
  return v->get<std::string>();
}

}  // namespace paraplan::planner::detail
