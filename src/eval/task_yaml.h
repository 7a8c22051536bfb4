// Your own tasks, in a subset of lm-evaluation-harness's task YAML:
//
//   task: my_task                      # results key; data: DATA_DIR/my_task.jsonl
//   output_type: multiple_choice       # or generate_until
//   data_file: my_task.jsonl           # (spinlm) evaluated rows, relative to --data-dir
//   fewshot_file: my_task.fewshot.jsonl
//   description: ""                    # before every prompt
//   doc_to_text: "Question: {{question}}\nAnswer:"
//   doc_to_choice: "{{choices.text}}"  # a field, a {{path}}, or a YAML list of strings
//   doc_to_target: "{{answer}}"        # a field, a template, or an integer
//   target_delimiter: " "
//   fewshot_delimiter: "\n\n"
//   num_fewshot: 5
//   fewshot_split: train               # with test_split: equal (or both unset) draws k + 1
//   test_split: test
//   fewshot_config: {sampler: first_n} # or default (random.Random(1234).sample)
//   metric_list: [{metric: acc}, {metric: acc_norm}]   # or exact_match (ignore_case,
//                                      # ignore_punctuation, regexes_to_ignore), or mc2
//   mc2_labels: mc2_targets.labels     # (spinlm) the 1/0 labels field for metric mc2
//   generation_kwargs: {until: ["\n\n"], max_gen_toks: 256}
//   filter_list: [{name: get-answer, filter: [{function: regex, regex_pattern: "..."},
//                                             {function: take_first}]}]
//
// doc_to_* follow the harness: a string naming a field of the row takes that field; a
// template that is exactly "{{ path }}" (dots and [i] indexes) takes the value at that path,
// keeping its type (a list for doc_to_choice, an integer for doc_to_target); any other
// template is rendered with Jinja2 (the chat-template engine) against the row. A target that
// renders to digits is an index into the choices, a target equal to a choice its index.
// When doc_to_text renders to digits and doc_to_choice is set, the task is multiple-input
// (Winogrande-style): the digits are the gold choice, the choices are contexts and
// doc_to_target is the shared continuation.
#pragma once
#include <string>

#include "eval/task_config.h"

namespace spinlm {

// Errors name the file and the key.
TaskDefinition load_task_yaml(const std::string& path);

}  // namespace spinlm
