//! ImageLocality: prefer nodes that already have the pod's images, scaled by how
//! widely each image is spread (upstream thresholds 23 MiB .. 1000 MiB per container).

use crate::cache::Cache;
use crate::framework::{Code, CycleState, NodeInfo, PodInfo, ScorePlugin, MAX_NODE_SCORE};

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

impl ImageLocality {
    pub const NAME: &'static str = "ImageLocality";
}

fn calculate_priority(sum_scores: i64, num_containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * i64::try_from(num_containers.max(1)).unwrap_or(1);
    let clamped = sum_scores.clamp(MIN_THRESHOLD, max_threshold);
    MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

impl ScorePlugin for ImageLocality {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn weight(&self) -> i64 {
        1
    }

    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        cache: &Cache,
    ) -> Code {
        state.total_nodes = cache.node_count();
        state.image_spread = pod
            .images
            .iter()
            .map(|i| cache.image_nodes.get(i).copied().unwrap_or(0))
            .collect();
        Code::Success
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        if state.total_nodes == 0 {
            return 0;
        }
        let mut sum = 0i64;
        for (i, image) in pod.images.iter().enumerate() {
            if let Some(size) = node.images.get(image) {
                // Upstream `scaledImageScore`: size × (nodes with the image / all nodes).
                let spread = state.image_spread.get(i).copied().unwrap_or(0) as f64
                    / state.total_nodes as f64;
                sum += (*size as f64 * spread) as i64;
            }
        }
        calculate_priority(sum, pod.images.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testutil::{cache, pod};
    use serde_json::json;

    #[test]
    fn priority_thresholds() {
        assert_eq!(calculate_priority(0, 1), 0);
        assert_eq!(calculate_priority(2000 * MB, 1), 100);
        assert_eq!(
            calculate_priority(
                MIN_THRESHOLD + (MAX_CONTAINER_THRESHOLD - MIN_THRESHOLD) / 2,
                1
            ),
            50
        );
    }

    #[test]
    fn nodes_with_the_image_score_higher() {
        let big = 600 * MB;
        let c = cache(
            vec![
                json!({"metadata": {"name": "has"}, "status": {"allocatable": {"cpu": "1"}, "images": [{"names": ["example.com/big:1"], "sizeBytes": big}]}}),
                json!({"metadata": {"name": "lacks"}}),
            ],
            vec![],
        );
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "example.com/big:1"}]}}),
        );
        let mut st = CycleState::default();
        let nodes = [&c.nodes["has"], &c.nodes["lacks"]];
        ImageLocality.pre_score(&mut st, &p, &nodes, &c);
        // spread 1/2 → 300 MiB → (300-23)/(1000-23) × 100 = 28.
        assert_eq!(ImageLocality.score(&st, &p, &c.nodes["has"]), 28);
        assert_eq!(ImageLocality.score(&st, &p, &c.nodes["lacks"]), 0);
    }
}
