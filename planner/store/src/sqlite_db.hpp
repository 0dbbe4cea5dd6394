#pragma once
// A thin RAII layer over the SQLite C API for the store: prepared statements with typed binds and
// reads, and transactions that roll back on exceptions. Every error names the statement and SQLite's
// message.
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace paraplan::planner::sql {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(sqlite3* db, const std::string& what);

class Statement {
 public:
  Statement(sqlite3* db, const char* sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, int64_t v);
  Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, double v);
  Statement& bind(int i, const std::string& v);
  Statement& bind(int i, const std::optional<double>& v);
  // Binds the arguments to ?1, ?2, ... in order.
  template <class... Args>
  Statement& bind_all(const Args&... args) {
    int i = 0;
    (bind(++i, args), ...);
    return *this;
  }

  bool step();  // true: a row is available; false: done
  void run();   // steps to completion, for statements without rows
  void reset(); // ready to bind and run again

  int64_t integer(int col) const;
  double real(int col) const;
  std::optional<double> optional_real(int col) const;
  std::string text(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

void exec(sqlite3* db, const char* sql);

// Runs a statement that SQLite may refuse with SQLITE_BUSY without ever calling the busy handler —
// `PRAGMA journal_mode=WAL` needs an exclusive lock, and a connection that already holds a shared lock
// is told "database is locked" at once rather than risk a deadlock (https://sqlite.org/c3ref/busy_handler.html).
// Retries with a growing, jittered back-off until `budget_ms` is spent; returns the first row's first
// column (the journal mode the pragma reports), or "" when there is none.
std::string exec_retrying(sqlite3* db, const char* sql, int budget_ms);

// BEGIN IMMEDIATE takes the write lock up front, so concurrent writers wait in busy_timeout instead of
// failing with SQLITE_BUSY half-way through a transaction.
class Transaction {
 public:
  explicit Transaction(sqlite3* db);
  ~Transaction();
  void commit();

 private:
  sqlite3* db_;
  bool done_ = false;
};

// Runs `st` once per row, after `bind_row(st, row)` has bound that row's parameters.
template <class Rows, class BindRow>
void run_each(Statement& st, const Rows& rows, BindRow bind_row) {
  for (const auto& row : rows) {
    bind_row(st, row);
    st.run();
    st.reset();
  }
}

// Steps a query to its end and returns `read_row(q)` for each row.
template <class Row, class ReadRow>
std::vector<Row> read_all(Statement& q, ReadRow read_row) {
  std::vector<Row> out;
  while (q.step()) out.push_back(read_row(q));
  return out;
}

// In one transaction: prepares `sql` and runs it once per row (see run_each).
template <class Rows, class BindRow>
void insert_rows(sqlite3* db, const char* sql, const Rows& rows, BindRow bind_row) {
  Transaction tx(db);
  Statement st(db, sql);
  run_each(st, rows, bind_row);
  tx.commit();
}

}  // namespace paraplan::planner::sql
