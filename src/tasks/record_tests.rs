//! Tables for the resolution of CI results to tasks.

use super::{Resolution, counts_toward_gate, resolution};

/// (task by head, task by branch, names a branch, development tasks, expected)
type Row = (Option<i64>, Option<i64>, bool, &'static [i64], Resolution);

#[test]
fn which_task_a_ci_result_belongs_to() {
    use Resolution as R;
    let cases: [Row; 8] = [
        (Some(1), Some(2), true, &[], R::HeadSha(1)),
        (None, Some(2), true, &[], R::Branch(2)),
        (None, None, true, &[3], R::Unresolved),
        (None, None, true, &[3, 4], R::Unresolved),
        (None, None, false, &[3], R::SingleDevelopmentTask(3)),
        (None, None, false, &[3, 4], R::Ambiguous(vec![3, 4])),
        (None, None, false, &[], R::Unresolved),
        (Some(1), None, false, &[3], R::HeadSha(1)),
    ];
    for (by_head, by_branch, names_branch, development, expected) in cases {
        assert_eq!(
            resolution(by_head, by_branch, names_branch, development),
            expected,
            "{by_head:?} {by_branch:?} {names_branch} {development:?}"
        );
    }
}

#[test]
fn only_a_result_on_the_head_counts() {
    let head = "a".repeat(40);
    assert!(counts_toward_gate(Some(&head), &head));
    assert!(counts_toward_gate(Some(&head.to_uppercase()), &head));
    assert!(!counts_toward_gate(Some(&head), &"b".repeat(40)));
    assert!(!counts_toward_gate(None, &head));
}
