//! Checks shared by the readers of DAG formats (Decima's TPC-H jobs, and
//! the workflow formats that follow): a stage graph must be acyclic, and a
//! reader names a node on the cycle when it is not.

/// A topological order of the graph given by `children` (node `i`'s
/// children), smallest index first among the ready nodes, or `Err` with
/// every node that lies on or behind a cycle (ascending).
pub fn topological_order(children: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = children.len();
    let mut indegree = vec![0usize; n];
    for kids in children {
        for &c in kids {
            if c < n {
                indegree[c] += 1;
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &c in &children[i] {
            if c < n {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    ready.insert(c);
                }
            }
        }
    }
    if order.len() == n { Ok(order) } else { Err((0..n).filter(|&i| indegree[i] > 0).collect()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_a_diamond_and_names_a_cycle() {
        // 0 -> {1, 2} -> 3
        assert_eq!(topological_order(&[vec![2, 1], vec![3], vec![3], vec![]]), Ok(vec![0, 1, 2, 3]));
        // 0 -> 1 -> 2 -> 1: nodes 1 and 2 are stuck.
        assert_eq!(topological_order(&[vec![1], vec![2], vec![1]]), Err(vec![1, 2]));
        assert_eq!(topological_order(&[vec![0]]), Err(vec![0]));
        assert_eq!(topological_order(&[]), Ok(vec![]));
    }
}
