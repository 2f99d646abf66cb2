//! Model `risk_hotspot`: spatio-temporal risk surface and uncovered hotspots. (Being built: see issue tracker.)
