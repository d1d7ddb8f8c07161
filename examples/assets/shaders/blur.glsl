#version 330 core
// Separable 9-tap Gaussian; u_dir is (1/w, 0) or (0, 1/h).
in vec2 v_uv;
uniform sampler2D u_src;
uniform vec2 u_dir;
out vec4 o_color;
const float W[5] = float[](0.227027, 0.1945946, 0.1216216, 0.054054, 0.016216);
void main() {
    vec4 sum = texture(u_src, v_uv) * W[0];
    for (int i = 1; i < 5; ++i) {
        sum += texture(u_src, v_uv + u_dir * float(i)) * W[i];
        sum += texture(u_src, v_uv - u_dir * float(i)) * W[i];
    }
    o_color = sum;
}
