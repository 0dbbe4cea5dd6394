#pragma once
// Data of the chapter's second exercise (LoRA at several ranks), without LibTorch:
// - the pretraining corpus: the English fortune cookies of the Debian package `fortunes`
//   (/usr/share/games/fortunes: plain-text files whose entries are separated by lines holding "%");
// - the fine-tuning task: multi-digit addition written as text, "47+85=231" (132 reversed), generated from a seed,
//   with the answer reversed (see Addition) and the pairs split deterministically into training and
//   held-out evaluation pairs.
#include <cstdint>
#include <string>
#include <vector>

#include "paraplan/exec/dataset.hpp"  // DataError

namespace paraplan::exec {

std::string default_fortunes_dir();  // /usr/share/games/fortunes
// Entries of one fortune file, or of every fortune file in a directory (sorted by name; the index
// files *.dat and the *.u8 links are skipped). DataError naming the path when there is none.
std::vector<std::string> fortune_documents(const std::string& path);

// The answer is written least-significant digit first, "47+85=231" for 132: a causal model then
// produces each digit after the digits it depends on (the carry comes from the right), which lets
// small transformers learn addition from far fewer examples (Lee et al. 2023, "Teaching Arithmetic to
// Small Transformers", §4: reversed output).
struct Addition {
  int64_t a = 0, b = 0;
  std::string prompt() const;  // "47+85="
  std::string answer() const;  // "231" (132 reversed)
  std::string text() const;    // "47+85=231"
};

// Whether the pair (a, b) is held out for evaluation: one pair in `every`, by a hash of the pair, so the
// split does not depend on how many problems are drawn.
bool held_out(int64_t a, int64_t b, int every = 10);

// n problems with `digits`-digit addends (no leading zeros: 10^(d-1) .. 10^d - 1), drawn from `seed`,
// from the training pairs (held_out = false) or the evaluation pairs (true).
std::vector<Addition> addition_problems(int n, int digits, uint64_t seed, bool evaluation);

// A task problem as text: the prompt the model is given and the answer it must continue with.
struct Problem {
  std::string prompt, answer;
  std::string text() const { return prompt + answer; }
};

// The fine-tuning tasks, by name:
// - "addition": `size`-digit addends, answer reversed (Addition);
// - "copy": `size` random lowercase letters, then "=", then the same letters ("kqzvb=kqzvb"): the answer
//   is read back from the prompt by attention alone, the pattern induction heads implement (Olsson
//   et al. 2022).
// Training and evaluation problems never share a prompt (held_out on a hash of it). DataError naming
// the task when it is unknown.
std::vector<Problem> task_problems(const std::string& task, int n, int size, uint64_t seed, bool evaluation);

// The answer in a model's continuation: everything before the end of the document (decoded as a
// newline), so an answer must also stop where it should.
std::string answer_of(const std::string& continuation);

}  // namespace paraplan::exec
