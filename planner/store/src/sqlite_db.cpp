#include "sqlite_db.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

namespace paraplan::planner::sql {

void fail(sqlite3* db, const std::string& what) {
  throw Error("SQLite: " + what + ": " + (db ? sqlite3_errmsg(db) : "cannot allocate a connection"));
}

Statement::Statement(sqlite3* db, const char* sql) : db_(db), sql_(sql) {
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail(db_, "preparing \"" + sql_ + "\"");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int i, int64_t v) {
  if (sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) fail(db_, "binding to \"" + sql_ + "\"");
  return *this;
}

Statement& Statement::bind(int i, double v) {
  if (sqlite3_bind_double(stmt_, i, v) != SQLITE_OK) fail(db_, "binding to \"" + sql_ + "\"");
  return *this;
}

Statement& Statement::bind(int i, const std::string& v) {
  if (sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    fail(db_, "binding to \"" + sql_ + "\"");
  return *this;
}

Statement& Statement::bind(int i, const std::optional<double>& v) {
  if (v) return bind(i, *v);
  if (sqlite3_bind_null(stmt_, i) != SQLITE_OK) fail(db_, "binding to \"" + sql_ + "\"");
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, "running \"" + sql_ + "\"");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::integer(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::real(int col) const { return sqlite3_column_double(stmt_, col); }

std::optional<double> Statement::optional_real(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(stmt_, col);
}

std::string Statement::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

void exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown error";
    sqlite3_free(msg);
    throw Error(std::string("SQLite: running \"") + sql + "\": " + m);
  }
}

std::string exec_retrying(sqlite3* db, const char* sql, int budget_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(budget_ms);
  std::minstd_rand jitter(static_cast<unsigned>(getpid()));
  for (int attempt = 0;; ++attempt) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
    std::string first;
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        first = t ? reinterpret_cast<const char*>(t) : "";
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        }
      }
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE || rc == SQLITE_OK) return first;
    const bool busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED;
    if (!busy || Clock::now() >= deadline) fail(db, std::string("running \"") + sql + "\"");
    // 1, 2, 4 ... 64 ms, each with up to as much again at random, so that openers do not retry in step.
    const int base_ms = 1 << std::min(attempt, 6);
    std::this_thread::sleep_for(std::chrono::milliseconds(base_ms + static_cast<int>(jitter() % static_cast<unsigned>(base_ms + 1))));
  }
}

Transaction::Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  exec(db_, "COMMIT");
  done_ = true;
}

}  // namespace paraplan::planner::sql
